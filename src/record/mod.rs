//! The inpatient record as hospitals send it: named sections, English keys canonical, the
//! Chinese keys of the JointCoder and CCL2025 layouts accepted. Knows nothing of FHIR.

pub mod io;
pub mod limits;
pub mod lists;
pub mod stops;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The sections coding reads. Order is the order of a discharge summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    ChiefComplaint,
    PresentIllness,
    PastHistory,
    PersonalHistory,
    MaritalHistory,
    FamilyHistory,
    AdmissionStatus,
    AdmissionDiagnosis,
    ClinicalCourse,
    ProgressNotes,
    ProcedureName,
    OperativeReport,
    ImagingFindings,
    UltrasoundFindings,
    UltrasoundImpression,
    DischargeDiagnosis,
    DischargeStatus,
    DischargeOrders,
}

impl Section {
    pub const ALL: [Section; 18] = [
        Section::ChiefComplaint,
        Section::PresentIllness,
        Section::PastHistory,
        Section::PersonalHistory,
        Section::MaritalHistory,
        Section::FamilyHistory,
        Section::AdmissionStatus,
        Section::AdmissionDiagnosis,
        Section::ClinicalCourse,
        Section::ProgressNotes,
        Section::ProcedureName,
        Section::OperativeReport,
        Section::ImagingFindings,
        Section::UltrasoundFindings,
        Section::UltrasoundImpression,
        Section::DischargeDiagnosis,
        Section::DischargeStatus,
        Section::DischargeOrders,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Section::ChiefComplaint => "chief_complaint",
            Section::PresentIllness => "present_illness",
            Section::PastHistory => "past_history",
            Section::PersonalHistory => "personal_history",
            Section::MaritalHistory => "marital_history",
            Section::FamilyHistory => "family_history",
            Section::AdmissionStatus => "admission_status",
            Section::AdmissionDiagnosis => "admission_diagnosis",
            Section::ClinicalCourse => "clinical_course",
            Section::ProgressNotes => "progress_notes",
            Section::ProcedureName => "procedure_name",
            Section::OperativeReport => "operative_report",
            Section::ImagingFindings => "imaging_findings",
            Section::UltrasoundFindings => "ultrasound_findings",
            Section::UltrasoundImpression => "ultrasound_impression",
            Section::DischargeDiagnosis => "discharge_diagnosis",
            Section::DischargeStatus => "discharge_status",
            Section::DischargeOrders => "discharge_orders",
        }
    }

    /// Chinese headings: the first is the dataset key, the rest are spellings seen in records.
    pub fn zh(self) -> &'static [&'static str] {
        match self {
            Section::ChiefComplaint => &["主诉"],
            Section::PresentIllness => &["现病史"],
            Section::PastHistory => &["既往史", "既往病史"],
            Section::PersonalHistory => &["个人史"],
            Section::MaritalHistory => &["婚姻史", "婚育史"],
            Section::FamilyHistory => &["家族史"],
            Section::AdmissionStatus => &["入院情况", "入院时情况"],
            Section::AdmissionDiagnosis => &["入院诊断", "初步诊断", "入院初步诊断"],
            Section::ClinicalCourse => &["诊疗经过", "住院经过", "治疗经过", "诊治经过", "住院诊疗经过", "入院后诊疗经过"],
            Section::ProgressNotes => &["病程记录", "日常病程记录", "首次病程记录", "上级医师查房记录", "抢救记录", "转科记录", "会诊记录", "阶段小结"],
            Section::ProcedureName => &["手术名称", "操作名称", "手术操作名称", "手术及操作名称"],
            Section::OperativeReport => &["手术经过", "手术记录", "手术过程", "操作记录", "操作过程", "操作经过", "手术及操作记录", "有创操作记录", "介入手术记录", "术后首次病程记录"],
            Section::ImagingFindings => &["影像学意见"],
            Section::UltrasoundFindings => &["超声提示"],
            Section::UltrasoundImpression => &["超声印象"],
            Section::DischargeDiagnosis => &["出院诊断", "最后诊断"],
            Section::DischargeStatus => &["出院情况", "出院时情况"],
            Section::DischargeOrders => &["出院医嘱", "出院带药"],
        }
    }

    /// Looks a section up by its English key or any Chinese heading.
    pub fn from_key(key: &str) -> Option<Section> {
        let key = key.trim();
        Section::ALL.into_iter().find(|s| s.key() == key || s.zh().contains(&key))
    }
}

/// Gold codes, principal first, when a record comes coded (training and evaluation data).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gold {
    #[serde(default)]
    pub diseases: Vec<String>,
    #[serde(default)]
    pub procedures: Vec<String>,
    /// Names given beside the codes (the sheet's 名称 columns), same order; may be empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disease_names: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub procedure_names: Vec<String>,
}

impl Gold {
    pub fn is_empty(&self) -> bool {
        self.diseases.is_empty() && self.procedures.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EhrRecord {
    pub record_id: String,
    #[serde(default)]
    pub sections: BTreeMap<Section, String>,
    /// Keys we do not know, kept verbatim: a hospital's extra headings are never dropped.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<Gold>,
}

impl EhrRecord {
    pub fn new(record_id: impl Into<String>) -> EhrRecord {
        EhrRecord { record_id: record_id.into(), ..Default::default() }
    }

    pub fn with(mut self, section: Section, text: impl Into<String>) -> EhrRecord {
        self.sections.insert(section, text.into());
        self
    }

    /// The section's text, or "" when absent.
    pub fn text(&self, section: Section) -> &str {
        self.sections.get(&section).map(String::as_str).unwrap_or("")
    }

    pub fn has(&self, section: Section) -> bool {
        !self.text(section).trim().is_empty()
    }

    /// Flat JSON in the canonical English layout (what `code` reads and writes).
    pub fn to_flat_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("record_id".into(), self.record_id.clone().into());
        for (s, t) in &self.sections {
            m.insert(s.key().into(), t.clone().into());
        }
        for (k, v) in &self.extra {
            m.insert(k.clone(), v.clone().into());
        }
        if let Some(g) = &self.gold {
            m.insert("gold".into(), serde_json::to_value(g).expect("gold serializes"));
        }
        serde_json::Value::Object(m)
    }
}
