//! Retrieval over the real national tables: what a coder types must find the right code.
mod common;

fn top(text: &str, system: &str, k: usize) -> Vec<String> {
    common::terminology().search(text, system, None, k).unwrap().into_iter().map(|c| c.code).collect()
}

#[test]
fn abbreviations_and_variants_find_the_clinical_code_first() {
    assert_eq!(top("冠心病", "icd10", 5)[0], "I25.103");
    assert_eq!(top("高血压3级很高危", "icd10", 5)[0], "I10.x00x032");
    assert_eq!(top("房颤", "icd10", 5)[0], "I48.x01");
    assert_eq!(top("心功能II级", "icd10", 5)[0], "I50.903");
    assert_eq!(top("心功能Ⅱ级", "icd10", 5)[0], "I50.903");
}

#[test]
fn procedure_phrasings_reach_the_top_three() {
    assert!(top("药物洗脱支架植入", "icd9cm3", 3).contains(&"36.0700".to_string()));
    assert!(top("单根导管冠脉造影", "icd9cm3", 3).contains(&"88.5500".to_string()));
    assert!(top("PTCA", "icd9cm3", 3).contains(&"00.6600x004".to_string()));
}

#[test]
fn systems_resolve_by_id_url_and_alias_and_unknown_ones_fail() {
    let t = common::terminology();
    let cs = t.edition("icd10", None).unwrap();
    assert_eq!(cs.meta.id, "icd-10-cn-clinical");
    assert_eq!(t.edition(&cs.meta.url, None).unwrap().meta.id, "icd-10-cn-clinical");
    assert!(t.edition("icd-10-cn-clinical", Some("9.9")).is_err());
    assert!(t.search("冠心病", "no-such-system", None, 5).is_err());
}

#[test]
fn hierarchy_and_crosswalk_on_real_tables() {
    let t = common::terminology();
    let cs = t.edition("icd10", None).unwrap();
    assert_eq!(cs.parent("I10.x00x032").unwrap().code, "I10.x00");
    assert_eq!(cs.parent("I25.103").unwrap().code, "I25.100");
    assert!(cs.children("I25.100").iter().any(|c| c.code == "I25.103"));
    let (_, tr) = t.translate("icd10", "R91.x00x003").unwrap();
    assert_eq!(tr.unwrap().code(), "R91.x03");
    let (_, tr) = t.translate("icd10", "I25.103").unwrap();
    assert_eq!(tr.unwrap().code(), "I25.103", "codes absent from the crosswalk map to themselves");
}

#[test]
fn code_also_rules_reach_chinese_codes() {
    let t = common::terminology();
    let px = t.edition("icd9cm3", None).unwrap();
    let targets = t.code_also.chinese_targets("36.0700", px);
    for code in ["00.4100", "00.4500", "00.6600x004"] {
        assert!(targets.contains(&code), "{code} missing from {targets:?}");
    }
}
