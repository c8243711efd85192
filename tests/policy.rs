//! Coding policy as data, on the real national tables: the shipped policies name only codes
//! of the editions, a hospital's own file changes a convention without a rebuild, and a bad
//! file is refused at load with its file and line.
mod common;

use std::sync::{Arc, OnceLock};

use jointcoder::agents::knowledge::{self, KnowledgeModels};
use jointcoder::pipeline::Pipeline;
use jointcoder::record::{EhrRecord, Section};
use jointcoder::terminology::policy::SHIPPED;
use jointcoder::terminology::{Terminology, TerminologyError, TerminologyOptions};

/// The national tables loaded once; each test swaps in the policy it needs (a clone shares the
/// editions and their indexes).
fn national() -> &'static Terminology {
    static T: OnceLock<Terminology> = OnceLock::new();
    T.get_or_init(|| Terminology::load(&TerminologyOptions::new(common::terminology_dir())).unwrap())
}

fn with_policy(setting: &str) -> Result<Arc<Terminology>, TerminologyError> {
    let mut opts = TerminologyOptions::new(common::terminology_dir());
    opts.policy = Some(setting.to_owned());
    opts.only = vec!["icd-10-cn-clinical".into(), "icd-9-cm-3-cn-clinical".into()];
    Terminology::load(&opts).map(Arc::new)
}

fn pipeline(t: &Arc<Terminology>) -> Pipeline {
    Pipeline::new(t.clone(), knowledge::agents(t, &KnowledgeModels::default()))
}

/// Atrial fibrillation on the ECG of a record whose lists name only the pacemaker indication.
fn af_record() -> EhrRecord {
    EhrRecord::new("policy-af")
        .with(Section::DischargeDiagnosis, "1.Ⅲ度房室传导阻滞 2.阵发性心房颤动")
        .with(Section::ImagingFindings, "胸部CT：右肺上叶小结节，考虑良性。")
        .with(Section::ClinicalCourse, "入院查血钾：3.1mmol/L，予口服补钾。")
}

#[test]
fn the_shipped_policies_load_against_the_real_tables() {
    let t = national();
    assert_eq!(t.policy.name, "national");
    assert!(!t.policy.principal.is_empty() && !t.policy.findings.is_empty());
    for (name, _) in SHIPPED {
        let p = with_policy(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(&p.policy.name, name);
    }
}

#[test]
fn a_hospital_file_changes_conventions_without_a_rebuild() {
    let national = Arc::new(national().clone());
    let c = pipeline(&national).code(&af_record()).unwrap();
    let dx = c.disease_codes();
    assert!(!dx.contains(&"I49.900".to_string()), "national: no umbrella beside specific arrhythmias: {dx:?}");
    assert!(!dx.iter().any(|d| d.starts_with("R91")), "national: an imaging finding alone is not coded: {dx:?}");
    assert!(dx.contains(&"E87.600".to_string()), "national: hypokalaemia from the lab: {dx:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("our-hospital.toml");
    std::fs::write(
        &file,
        "name = \"our-hospital\"\nversion = \"1\"\nextends = \"national\"\n\n[[umbrella]]\nid = \"arrhythmia\"\ncode = \"I49.900\"\nspecific = [\"I44\", \"I45\", \"I47\", \"I48\", \"I49\"]\ncoded = true\n\n[[finding]]\nid = \"lung-nodule\"\ncode = \"R91.x00x003\"\nwords = [\"肺结节\", \"小结节\"]\nunless = [\"R91\"]\n\n[[lab]]\nid = \"hypokalaemia\"\ncode = \"E87.600\"\ncoded = false\n",
    )
    .unwrap();
    let ours = with_policy(file.to_str().unwrap()).unwrap();
    assert_eq!(ours.policy.name, "our-hospital");
    let c = pipeline(&ours).code(&af_record()).unwrap();
    let dx = c.disease_codes();
    assert!(dx.contains(&"I49.900".to_string()), "this hospital codes the umbrella: {dx:?}");
    assert!(dx.iter().any(|d| d.starts_with("R91")), "and the lung nodule: {dx:?}");
    assert!(!dx.contains(&"E87.600".to_string()), "but not hypokalaemia from a lab alone: {dx:?}");
    // The agents say which policy they applied.
    let validate = c.trace.iter().find(|t| t.stage == jointcoder::pipeline::Stage::Validate).unwrap();
    assert!(validate.agent.as_ref().unwrap().model.contains("our-hospital"), "{:?}", validate.agent);
}

#[test]
fn a_bad_policy_file_is_refused_with_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "name = \"typo\"\nversion = \"1\"\nextends = \"national\"\n\n[[status]]\nid = \"stent\"\ncode = \"Z95.599\"\nhistory = [\"支架术后\"]\n").unwrap();
    let e = with_policy(file.to_str().unwrap()).err().expect("Z95.599 is no code");
    let text = e.to_string();
    assert!(matches!(e, TerminologyError::Policy(_)), "{e:?}");
    assert!(text.contains("typo.toml:7") && text.contains("Z95.599"), "{text}");
    // A hospital that lets resuscitation lead whatever the diagnosis switches the rule off;
    // a family that is no code is refused by its line.
    std::fs::write(&file, "name = \"ours\"\nversion = \"1\"\nextends = \"national\"\n\n[[principal_only_for]]\nid = \"resuscitation\"\nprocedures = [\"99.60\"]\ndiagnoses = [\"Q99.99\"]\n").unwrap();
    let text = with_policy(file.to_str().unwrap()).err().expect("Q99.99 is no family").to_string();
    assert!(text.contains("typo.toml:8") && text.contains("Q99.99"), "{text}");
    std::fs::write(&file, "name = \"ours\"\nversion = \"1\"\nextends = \"national\"\n\n[[principal_only_for]]\nid = \"resuscitation\"\nprocedures = [\"99.60\"]\ndiagnoses = [\"I46\"]\nenabled = false\n").unwrap();
    let t = with_policy(file.to_str().unwrap()).unwrap();
    assert!(!t.policy.principal_only_for.iter().any(|r| r.id == "resuscitation"), "switched off: {:?}", t.policy.principal_only_for);
    assert!(t.policy.principal_only_for.iter().any(|r| r.id == "cardioversion"), "the other rules stay");
    assert!(national().policy.principal_only_for.iter().any(|r| r.id == "resuscitation"));
    let e = with_policy("/nowhere/policy.toml").err().expect("no such file");
    assert!(e.to_string().contains("/nowhere/policy.toml"), "{e}");
}

/// A lab rule's `unless` is a policy choice: the national file codes an infarction's acute
/// heart failure from its diuretics only where no heart-failure class is coded; a hospital
/// that codes both says so in its file, and a family that is no code is refused by line.
#[test]
fn a_lab_rules_unless_is_the_hospitals_choice() {
    let rec = EhrRecord::new("killip")
        .with(Section::DischargeDiagnosis, "1.急性非ST段抬高型心肌梗死 KillipII级 2.冠状动脉粥样硬化性心脏病")
        .with(Section::ClinicalCourse, "肌钙蛋白I：3.2ng/mL↑。给予抗血小板、调脂、利尿等治疗。");
    let national = Arc::new(national().clone());
    let dx = pipeline(&national).code(&rec).unwrap().disease_codes();
    assert!(dx.contains(&"I50.900x014".to_string()) && !dx.contains(&"I50.907".to_string()), "national: the Killip class alone: {dx:?}");
    let no_failure = EhrRecord::new("nstemi")
        .with(Section::DischargeDiagnosis, "1.急性非ST段抬高型心肌梗死 2.冠状动脉粥样硬化性心脏病")
        .with(Section::ClinicalCourse, "给予抗血小板、调脂、利尿等治疗。");
    let dx = pipeline(&national).code(&no_failure).unwrap().disease_codes();
    assert!(dx.contains(&"I50.907".to_string()), "national: the diuretics tell of acute failure: {dx:?}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("both.toml");
    let lab = "[[lab]]\nid = \"infarction-heart-failure\"\ncode = \"I50.907\"\ntreated = [\"利尿\"]\nunless = [";
    std::fs::write(&file, format!("name = \"both\"\nversion = \"1\"\nextends = \"national\"\n\n{lab}\"I50.907\"]\n")).unwrap();
    let both = with_policy(file.to_str().unwrap()).unwrap();
    let dx = pipeline(&both).code(&rec).unwrap().disease_codes();
    assert!(dx.contains(&"I50.900x014".to_string()) && dx.contains(&"I50.907".to_string()), "this hospital codes both: {dx:?}");

    std::fs::write(&file, format!("name = \"both\"\nversion = \"1\"\nextends = \"national\"\n\n{lab}\"I5O\"]\n")).unwrap();
    let e = with_policy(file.to_str().unwrap()).err().expect("I5O is no family").to_string();
    assert!(e.contains("both.toml:9") && e.contains("I5O"), "{e}");
}
