//! `jointcoder train` end to end on small training sources written by the test: the models are
//! written to the data directory, load back, and change behaviour.
mod common;

use jointcoder::train::{train_all, TrainingSources};
use jointcoder::agents::knowledge::KnowledgeModels;
use jointcoder::catalog::LEARNED_LEXICON_FILE;

#[test]
fn trains_reranker_aliases_and_principal_model_into_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let vocab = dir.path().join("vocab.csv");
    std::fs::write(
        &vocab,
        "code,name\nI25.1,冠状动脉粥样硬化性心脏病\nI48,心房颤动\nI10,高血压\nE11.9,2型糖尿病\nI50.9,心力衰竭\nJ18.9,肺炎\nK76.0,脂肪肝\nI20.0,不稳定型心绞痛\n",
    )
    .unwrap();
    let mut chip = Vec::new();
    for (text, gold) in [
        ("冠心病", "冠状动脉粥样硬化性心脏病"),
        ("房颤", "心房颤动"),
        ("高血压病", "高血压"),
        ("2型糖尿病", "2型糖尿病"),
        ("慢性心衰", "心力衰竭"),
        ("社区获得性肺炎", "肺炎"),
        ("轻度脂肪肝", "脂肪肝"),
        ("不稳定心绞痛", "不稳定型心绞痛"),
        ("冠心病不稳定型心绞痛", "冠状动脉粥样硬化性心脏病##不稳定型心绞痛"),
        ("阵发性心房颤动发作", "心房颤动"),
    ] {
        for _ in 0..3 {
            chip.push(serde_json::json!({ "text": text, "normalized_result": gold }));
        }
    }
    let chip_path = dir.path().join("chip.json");
    std::fs::write(&chip_path, serde_json::to_string(&chip).unwrap()).unwrap();
    let records = dir.path().join("records.json");
    std::fs::write(
        &records,
        serde_json::json!([
            { "病案标识": "R2", "入院诊断": "1.冠心病 不稳定型心绞痛 2.高血压病3级（很高危）", "主诉": "胸痛3天", "主要诊断编码": "I20.000", "其他诊断编码": "I25.103;I10.x00x032" },
            { "病案标识": "R4", "入院诊断": "1.高血压病3级（很高危）2.冠心病", "主诉": "头晕1周", "主要诊断编码": "I10.x00x032", "其他诊断编码": "I25.103" },
            { "病案标识": "R3", "入院诊断": "1.心房颤动", "主诉": "心悸", "主要诊断编码": "I48.x01", "其他诊断编码": "" }
        ])
        .to_string(),
    )
    .unwrap();
    let sources = TrainingSources {
        chip_cdn_train: chip_path,
        beijing_v601: vocab,
        procedure_pairs: dir.path().join("absent.csv"),
        procedure_vocab: dir.path().join("absent.csv"),
        ccl_records: records,
    };
    let mut config = common::test_config(dir.path().join("data"));
    config.auto_train = false;
    let trained = train_all(&config, &sources).unwrap();
    let models_dir = dir.path().join("data/models");
    assert!(KnowledgeModels::present(&models_dir));
    let loaded = KnowledgeModels::load(&models_dir).unwrap();
    assert_eq!(loaded.reranker.weights, trained.reranker.weights);
    assert!(loaded.reranker.trained_on.contains("CHIP-CDN"));
    assert_ne!(loaded.reranker.weights, KnowledgeModels::default().reranker.weights, "training changed the weights");
    // Only even records train the principal model (R3 is test data).
    assert!(loaded.principal.trained_on.contains("even"));
    let aliases = std::fs::read_to_string(models_dir.join(LEARNED_LEXICON_FILE)).unwrap();
    assert!(aliases.contains("社区获得性肺炎\t肺炎"), "{aliases}");
    assert!(aliases.contains("冠心病不稳定型心绞痛\t不稳定型心绞痛"), "each gold term of a mention learns it: {aliases}");
}
