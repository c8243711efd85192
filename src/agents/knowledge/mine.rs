//! Candidate mining: procedures the 手术名称 field omits, found in the operative report, the
//! progress notes and the clinical course (63.8% of records omit some).
//!
//! Cath-lab procedures (angiography, PCI, devices, ablation) come from the report read as
//! facts ([`super::procedure_facts`]) and coded by the policy's rules
//! ([`super::procedure_rules`]); each mined code cites its facts. The procedures told in a
//! phrase (intubation, CRRT, IABP, endoscopy) come from the table below: trigger words, the
//! context their clause must have, the code. Mentions that are planned, refused, failed or
//! negated are not procedures done.

use std::sync::Arc;

use super::procedure_facts::{read_record, SOURCES};
use super::procedure_rules::code_facts;
use super::text::{assertion, chars_before, clause, contains_any, find_all, Assertion};
use crate::agents::{Agent, AgentError, AgentInfo, AgentInput, AgentOutput, Evidence, Item, Role};
use crate::record::{EhrRecord, Section};
use crate::terminology::families::same_family;
use crate::terminology::policy::Policy;

struct Rule {
    code: &'static str,
    name: &'static str,
    triggers: &'static [&'static str],
    /// The clause must contain one of these (empty: no condition).
    needs: &'static [&'static str],
    /// The clause must contain none of these.
    excludes: &'static [&'static str],
}

const PERICARDIOCENTESIS: &[&str] = &["心包穿刺", "穿刺心包", "心包腔内", "心包置管引流"];
const ULTRASOUND_GUIDED: &[&str] = &["超声引导", "超声定位", "彩超引导", "B超引导", "超声下", "超声实时引导", "实时超声引导"];
/// Real-time guidance (the site only localised, 超声定位, is not it).
const REAL_TIME_GUIDED: &[&str] = &["超声引导", "彩超引导", "B超引导", "超声实时引导", "实时超声引导"];
/// A ventilator's mode written for the ventilation itself (呼吸机A/C模式).
const VENTILATOR_MODES: &[&str] = &["呼吸机A/C", "呼吸机VC", "呼吸机PC", "呼吸机SIMV"];
const VENTRICULAR: &[&str] = &["室速", "室性心动过速", "VT", "室颤", "心室颤动", "VF", "室扑"];

const RULES: &[Rule] = &[
    Rule { code: "17.5501", name: "经皮冠状动脉旋磨术", triggers: &["旋磨"], needs: &[], excludes: &[] },
    Rule { code: "17.5500x003", name: "经皮冠状动脉血栓抽吸术", triggers: &["血栓抽吸", "抽吸导管", "导管抽吸", "抽出血栓", "抽出红色血栓", "抽出白色血栓", "抽出混合血栓", "吸出血栓", "吸出红色血栓", "吸出大量"], needs: &[], excludes: &[] },
    Rule { code: "37.6101", name: "主动脉球囊反搏置入术", triggers: &["IABP", "主动脉内球囊反搏", "主动脉球囊反搏"], needs: &[], excludes: &["撤除", "拔除"] },
    Rule { code: "37.7800", name: "暂时性经静脉起搏器系统的置入", triggers: &["临时起搏"], needs: &["置入", "植入", "电极", "起搏器", "导线", "安置"], excludes: &["拔除", "撤除", "体外起搏", "经皮起搏", "经胸起搏"] },
    Rule { code: "37.9000x001", name: "经皮左心耳封堵术", triggers: &["左心耳封堵", "WATCHMAN", "Watchman", "LAmbre"], needs: &[], excludes: &[] },
    Rule { code: "35.5200x001", name: "经皮房间隔缺损封堵术", triggers: &["房间隔缺损封堵", "ASD封堵"], needs: &[], excludes: &[] },
    Rule { code: "35.5200x002", name: "经皮卵圆孔未闭封堵术", triggers: &["卵圆孔未闭封堵", "PFO封堵"], needs: &[], excludes: &[] },
    Rule { code: "35.5500x001", name: "经皮室间隔缺损封堵术", triggers: &["室间隔缺损封堵", "VSD封堵"], needs: &[], excludes: &[] },
    // A closure device released in the sentence that names the defect (选24mm Amplatzer封堵器
    // 释放 after 经ASD入左上肺静脉) closes that defect.
    Rule { code: "35.5200x001", name: "经皮房间隔缺损封堵术", triggers: &["封堵器"], needs: &["ASD", "房间隔缺损"], excludes: &["卵圆孔", "PFO", "室间隔", "VSD", "左心耳", "瓣周漏", "动脉导管", "建议", "拟"] },
    Rule { code: "35.5200x002", name: "经皮卵圆孔未闭封堵术", triggers: &["封堵器"], needs: &["PFO", "卵圆孔"], excludes: &["室间隔", "VSD", "左心耳", "瓣周漏", "动脉导管", "建议", "拟"] },
    Rule { code: "35.5500x001", name: "经皮室间隔缺损封堵术", triggers: &["封堵器"], needs: &["VSD", "室间隔缺损"], excludes: &["左心耳", "瓣周漏", "动脉导管", "建议", "拟"] },
    Rule { code: "37.2100", name: "右心导管置入", triggers: &["右心导管"], needs: &[], excludes: &[] },
    Rule { code: "37.2800", name: "心内超声心动图", triggers: &["心腔内超声", "ICE导管", "AcuNav", "SoundStar"], needs: &[], excludes: &[] },
    Rule { code: "89.5900x003", name: "直立倾斜试验", triggers: &["直立倾斜试验", "倾斜试验", "HUTT"], needs: &[], excludes: &[] },
    // Device systems taken out (for infection), the pocket debrided, a failed lead replaced; a
    // generator taken out for its replacement (取出原脉冲发生器) is the replacement's.
    Rule { code: "37.8901", name: "起搏器装置去除术", triggers: &["取出脉冲发生器", "取出起搏器", "起搏系统完全拔除", "起搏系统拔除", "移除脉冲发生器", "拔除起搏系统"], needs: &[], excludes: &["原脉冲发生器", "原起搏器", "临时"] },
    Rule { code: "37.7701", name: "心脏电极去除术", triggers: &["拔除心室电极", "拔除心房电极", "拔除电极", "电极拔除", "拔除导线", "导线拔除", "拔除心房、心室电极", "拔除心室电极及心房电极", "拔除右房电极", "拔除右室电极", "拔除右心房电极", "拔除右心室电极"], needs: &[], excludes: &["临时"] },
    Rule { code: "37.7901", name: "心脏起搏器囊袋清创术", triggers: &["清创", "清除感染", "清除坏死"], needs: &["囊袋", "包膜"], excludes: &[] },
    // A wound or ulcer debrided by excision (sharp removal of necrotic tissue); dressing
    // changes (换药) are not coded.
    Rule { code: "86.2200x011", name: "皮肤和皮下坏死组织切除清创术", triggers: &["清创"], needs: &["锐性", "切除", "坏死组织", "清除坏死"], excludes: &["囊袋", "包膜", "非切除", "清创缝合"] },
    Rule { code: "37.7600", name: "经静脉心房和（或）心室导线[电极]的置换", triggers: &["送入新", "植入新", "置入新", "重新植入", "重新置入"], needs: &["电极", "导线"], excludes: &["临时", "未植入", "未置入", "未送入"] },
    Rule { code: "37.7900x004", name: "循环记录器置入术", triggers: &["循环记录器", "ILR", "植入式心电事件记录", "心电记录系统", "心电事件监测器", "ICM", "Reveal LINQ", "LINQ", "皮下心电监测"], needs: &["置入", "植入"], excludes: &[] },
    Rule { code: "35.9604", name: "经导管二尖瓣球囊扩张成形术", triggers: &["二尖瓣球囊扩张", "PBMV", "经皮球囊二尖瓣"], needs: &[], excludes: &[] },
    // A tube taken out (拔除气管插管) was put in: the clause still tells of an intubation.
    Rule { code: "96.0400", name: "气管内插管", triggers: &["气管插管", "气管内插管", "气管插官", "经口插管", "经鼻插管"], needs: &[], excludes: &[] },
    Rule { code: "93.9000x002", name: "无创呼吸机辅助通气(双水平气道正压[BiPAP])", triggers: &["BiPAP", "BIPAP", "双水平"], needs: &[], excludes: &[] },
    Rule { code: "93.9000", name: "无创机械性通气", triggers: &["无创呼吸机", "无创通气", "无创正压通气", "NIV", "无创机械通气", "无创辅助通气"], needs: &[], excludes: &["BiPAP", "BIPAP", "双水平"] },
    Rule { code: "39.9500x007", name: "连续性肾脏替代治疗[CRRT]", triggers: &["CRRT", "连续性肾脏替代", "床旁血滤", "连续性血液净化"], needs: &[], excludes: &[] },
    // A dialysis at the bedside is one (床旁血液透析4小时); its catheter (床旁临时血透导管置入) and a
    // haemofiltration at the bedside (床旁血液透析滤过, CRRT) are not.
    Rule { code: "39.9500", name: "血液透析", triggers: &["血液透析", "血透"], needs: &[], excludes: &["CRRT", "连续性", "规律", "维持性", "透析滤过", "血滤", "导管", "透析管", "血透管"] },
    // At the bedside too when it is told intermittent.
    Rule { code: "39.9500", name: "血液透析", triggers: &["间歇性血液透析", "间歇性血透", "IHD"], needs: &[], excludes: &[] },
    // HD by its abbreviation where it cannot be HDL's (床旁HD 1次, 行HD).
    Rule { code: "39.9500", name: "血液透析", triggers: &["床旁HD", "行HD", "HD 1次", "HD1次", "HD 2次", "HD2次", "HD 3次", "HD3次", "HD治疗", "常规HD", "急诊HD", "紧急HD"], needs: &[], excludes: &["CRRT"] },
    Rule { code: "39.9500x005", name: "单膜血浆置换", triggers: &["血浆置换"], needs: &[], excludes: &["双膜", "DFPP"] },
    Rule { code: "39.9500x006", name: "双膜血浆置换", triggers: &["双膜血浆置换", "DFPP"], needs: &[], excludes: &[] },
    Rule { code: "38.9502", name: "为肾透析的临时静脉插管术", triggers: &["透析导管", "临时透析管", "血透管", "透析用导管", "血透导管", "血透临时导管", "血滤导管"], needs: &["置", "穿刺"], excludes: &[] },
    Rule { code: "39.6500", name: "体外膜肺氧合[ECMO]", triggers: &["ECMO", "体外膜肺"], needs: &[], excludes: &["撤离", "撤除", "撤机"] },
    Rule { code: "38.9100", name: "动脉导管插入术", triggers: &["动脉置管", "动脉穿刺置管", "有创动脉血压监测", "有创动脉压监测", "有创血压监测", "动脉测压"], needs: &[], excludes: &["拔除"] },
    Rule { code: "38.7x04", name: "下腔静脉滤器置入术", triggers: &["下腔静脉滤器", "滤器"], needs: &["下腔静脉"], excludes: &["取出"] },
    // A resuscitation in the history or the reasoning (结合复苏、电除颤史; 与CPR相关) is not one done now.
    Rule { code: "99.6000", name: "心肺复苏", triggers: &["心肺复苏", "胸外按压", "CPR"], needs: &[], excludes: &["史", "相关"] },
    // Catheter-directed (肺动脉内, 经导管): a systemic infusion is 99.1000, and a 鼻导管 in the
    // same sentence is no catheter of the lysis.
    Rule { code: "99.1007", name: "肺动脉血栓溶解剂灌注", triggers: &["溶栓"], needs: &["肺动脉内", "肺动脉导管", "经导管", "导管溶栓", "导管接触", "置管溶栓", "导管内溶栓", "导管注入"], excludes: &["静脉溶栓"] },
    Rule { code: "99.1000", name: "血栓溶解药的注射或输注", triggers: &["溶栓"], needs: &["阿替普酶", "尿激酶", "rt-PA", "rtPA", "替奈普酶", "瑞替普酶", "链激酶", "静脉"], excludes: &["导管溶栓", "溶栓治疗禁忌", "未溶栓"] },
    // The thrombolytic given, told by its name and dose (阿替普酶50mg 2h泵入) without the word 溶栓;
    // a catheter locked with urokinase (尿激酶封管) is no thrombolysis.
    Rule { code: "99.1000", name: "血栓溶解药的注射或输注", triggers: &["阿替普酶", "替奈普酶", "瑞替普酶", "尿激酶", "rt-PA", "rtPA"], needs: &["mg", "万U", "万单位", "MU", "静推", "泵入", "静滴", "静注", "静脉", "iv", "IV"], excludes: &["封管", "导管内", "禁忌", "导管溶栓"] },
    // Targeted temperature management after an arrest (not cooling a fever).
    Rule { code: "99.8100", name: "低温(中枢)(局部)", triggers: &["目标温度管理", "亚低温治疗", "低温治疗", "TTM"], needs: &[], excludes: &[] },
    Rule { code: "88.4300", name: "肺动脉造影术", triggers: &["肺动脉造影"], needs: &[], excludes: &["CT", "CTA", "CTPA"] },
    Rule { code: "99.6200", name: "心脏其他电抗休克", triggers: &["电除颤", "非同步电复律", "非同步直流电复律", "予除颤", "行除颤", "次除颤", "除颤1次", "除颤2次", "除颤3次", "除颤后"], needs: &[], excludes: &["除颤器", "ICD", "阻抗", "测试", "除颤阈值", "史", "相关"] },
    // Cardioversion is atrial (99.61) for atrial arrhythmias; of a ventricular one it is the
    // other countershock (99.62).
    Rule { code: "99.6200", name: "心脏其他电抗休克", triggers: &["同步电复律", "直流电复律", "电复律"], needs: VENTRICULAR, excludes: &["药物复律"] },
    Rule { code: "99.6100", name: "心房复律术", triggers: &["同步电复律", "直流电复律", "电复律"], needs: &[], excludes: &["非同步", "药物复律", "室速", "室性心动过速", "VT", "室颤", "心室颤动", "VF", "室扑"] },
    Rule { code: "45.1300x004", name: "胃-十二指肠镜检查", triggers: &["胃镜"], needs: &[], excludes: &["活检", "钛夹", "止血"] },
    Rule { code: "31.1x00x005", name: "暂时性气管切开术", triggers: &["气管切开术", "经皮扩张气管切开", "行气管切开", "床旁气管切开"], needs: &[], excludes: &["拔除", "既往", "永久"] },
    // A bronchoalveolar lavage (its fluid sent for culture, GM, mNGS) is diagnostic: 33.2400x002
    // (the gold's writers settled on it, P8), told as 灌洗 or as BAL.
    Rule { code: "33.2400x002", name: "支气管镜下诊断性支气管肺泡灌洗[BAL]", triggers: &["支气管镜", "纤支镜", "气管镜", "肺泡灌洗"], needs: &["灌洗", "BAL"], excludes: &[] },
    // Biliary drainage at ERCP: the nasobiliary drain and the sphincterotomy are coded, the
    // ERCP they were done by is included in them; a drain taken out, or a cholangiogram
    // through it, is no new drain.
    Rule { code: "51.8600x002", name: "内镜下鼻胆管引流术", triggers: &["鼻胆管引流", "鼻胆引流", "ENBD"], needs: &[], excludes: &["拔除", "造影"] },
    Rule { code: "51.8503", name: "内镜下十二指肠乳头肌切开术(EST)", triggers: &["乳头括约肌切开", "乳头肌切开", "乳头切开", "乳头小切开", "括约肌小切开", "括约肌切开术(EST)", "EST术", "（EST）", "(EST)"], needs: &[], excludes: &["胰管"] },
    // Bone marrow: the aspirate and the trephine biopsy are two procedures when both are done.
    Rule { code: "41.3800x001", name: "骨髓穿刺术", triggers: &["骨髓穿刺", "骨穿"], needs: &[], excludes: &[] },
    Rule { code: "41.3100", name: "骨髓活组织检查", triggers: &["骨髓活检", "骨髓活组织检查"], needs: &[], excludes: &[] },
    // Colonic polyps removed at colonoscopy, by site.
    Rule { code: "45.4201", name: "内镜下乙状结肠息肉切除术", triggers: &["乙状结肠息肉"], needs: &["切除", "电切", "圈套"], excludes: &[] },
    Rule { code: "45.4200x003", name: "纤维结肠镜下结肠息肉切除术", triggers: &["结肠息肉"], needs: &["切除", "电切", "圈套"], excludes: &["乙状结肠息肉"] },
    Rule { code: "03.3101", name: "腰椎穿刺术", triggers: &["腰椎穿刺", "腰穿"], needs: &[], excludes: &["腰大池"] },
    Rule { code: "54.9101", name: "腹腔穿刺引流术", triggers: &["腹腔穿刺", "腹穿"], needs: &["引流", "置管"], excludes: &[] },
    Rule { code: "54.9105", name: "腹腔穿刺术", triggers: &["腹腔穿刺", "腹穿"], needs: &[], excludes: &["引流", "置管"] },
    // Transfusions by component.
    Rule { code: "99.0401", name: "红细胞输入", triggers: &["输注红细胞", "输红细胞", "悬浮红细胞", "输入红细胞", "红细胞悬液", "去白红细胞", "洗涤红细胞"], needs: &[], excludes: &[] },
    Rule { code: "99.0500", name: "输入血小板", triggers: &["输注血小板", "输血小板", "单采血小板", "机采血小板", "血小板输注", "输入血小板"], needs: &[], excludes: &[] },
    Rule { code: "99.0701", name: "血浆输入", triggers: &["输注血浆", "输血浆", "新鲜冰冻血浆", "血浆输注", "输入血浆", "冰冻血浆"], needs: &[], excludes: &["置换"] },
    // Pericardiocentesis by how it was guided and whether a drain stayed.
    Rule { code: "37.0x01", name: "超声引导下心包穿刺引流术", triggers: PERICARDIOCENTESIS, needs: ULTRASOUND_GUIDED, excludes: &[] },
    Rule { code: "37.0x00x002", name: "心包穿刺引流术", triggers: PERICARDIOCENTESIS, needs: &["引流"], excludes: ULTRASOUND_GUIDED },
    Rule { code: "37.0x00", name: "心包穿刺术", triggers: PERICARDIOCENTESIS, needs: &[], excludes: &["引流", "超声引导", "超声定位", "彩超引导", "B超引导", "超声下"] },
    // A catheter left in the pleural space to drain (胸腔穿刺置管引流) is a closed drainage, not
    // a tap.
    Rule { code: "34.0401", name: "胸腔闭式引流术", triggers: &["胸腔闭式引流", "胸腔引流", "胸腔穿刺置管", "胸腔置管"], needs: &[], excludes: &[] },
    Rule { code: "34.9103", name: "超声引导下胸腔穿刺术", triggers: &["胸腔穿刺"], needs: REAL_TIME_GUIDED, excludes: &[] },
    Rule { code: "34.9101", name: "胸腔穿刺抽液术", triggers: &["胸腔穿刺"], needs: &[], excludes: REAL_TIME_GUIDED },
    Rule { code: "34.9102", name: "胸腔穿刺抽气术", triggers: &["穿刺排气", "穿刺抽气", "胸腔抽气", "针刺减压", "穿刺减压"], needs: &[], excludes: &[] },
    // Device revisions: a lead repositioned (回撤后重新送入，固定于…), a pocket haematoma evacuated,
    // a defibrillator reprogrammed as the treatment (a routine check is no procedure).
    Rule { code: "37.7501", name: "心脏起搏器电极调整术", triggers: &["重新送入", "回撤后重新", "重新固定", "电极复位", "电极重置", "调整电极位置", "电极重新定位"], needs: &["电极", "导线"], excludes: &["未调整", "临时", "新电极", "新的电极"] },
    Rule { code: "37.7900", name: "心脏装置的囊袋修复术或再定位术", triggers: &["血肿清除", "清除血肿", "清除积血", "清除血凝块", "清除暗红色血凝块"], needs: &["囊袋"], excludes: &[] },
    Rule { code: "89.4900", name: "自动化可置入的复率器（或）除颤器(AICD)检查", triggers: &["重新程控", "程控调整", "调整程控"], needs: &["ICD", "除颤", "VT区", "VF区", "ATP"], excludes: &["未调整"] },
    // A pseudoaneurysm closed by thrombin injected under ultrasound.
    Rule { code: "39.7900", name: "其他血管的其他血管内修补术", triggers: &["凝血酶注射", "注射凝血酶", "注入凝血酶"], needs: &["瘤腔", "假性动脉瘤"], excludes: &[] },
    // Stones taken out at ERCP; a ureter stented for an obstructed, infected kidney; a valve
    // replaced or dilated through a catheter.
    Rule { code: "51.8800", name: "内镜去除胆管结石", triggers: &["取石球囊", "取出结石", "取出黄褐色结石", "网篮取石", "取石"], needs: &["ERCP", "十二指肠镜", "乳头", "胆总管", "胆管"], excludes: &["未取石", "未行取石", "未能取石", "二期", "再入院", "择期", "建议"] },
    Rule { code: "59.8x03", name: "经尿道输尿管支架置入术", triggers: &["双J管", "D-J管", "DJ管", "输尿管支架"], needs: &["置入", "留置", "放置", "插入"], excludes: &["拔除", "取出", "更换"] },
    // TAVR is the replacement (置换, 35.0502), TAVI the implantation (植入, 35.0501), as the
    // record names it; a valve told deployed (送入Venus-A 26mm自膨胀瓣膜，缓慢释放) is a
    // replacement.
    Rule { code: "35.0501", name: "经导管主动脉瓣植入术", triggers: &["TAVI", "经导管主动脉瓣植入"], needs: &["植入", "置入", "释放", "瓣膜"], excludes: &["评估", "拟行", "建议"] },
    Rule { code: "35.0502", name: "经导管主动脉瓣置换术", triggers: &["TAVR", "经导管主动脉瓣置换"], needs: &["植入", "置入", "释放", "瓣膜", "手术", "术"], excludes: &["评估", "拟行", "建议", "TAVR术后", "TAVI"] },
    Rule { code: "35.0502", name: "经导管主动脉瓣置换术", triggers: &["自膨胀瓣膜", "自膨胀式瓣膜", "球扩式瓣膜", "Venus-A", "VitaFlow", "TaurusOne", "Evolut", "CoreValve", "SAPIEN", "Sapien"], needs: &["释放", "植入", "置入", "送入"], excludes: &["评估", "拟", "建议", "二尖瓣", "TAVI", "经导管主动脉瓣植入"] },
    // Edge-to-edge mitral repair by its clip (MitraClip, 夹合器), named or told.
    Rule { code: "35.9700x003", name: "经皮二尖瓣钳夹术(MitraClip)", triggers: &["MitraClip", "夹合器", "缘对缘修复", "TEER", "二尖瓣钳夹", "ValveClamp", "DragonFly", "PASCAL"], needs: &["夹合", "释放", "夹闭", "植入", "送入", "修复", "行"], excludes: &["评估", "拟", "建议", "暂不", "不考虑"] },
    // A transoesophageal echocardiogram told as a study with its findings (行TEE：左心耳未见血
    // 栓) is coded; one that only guides or monitors a procedure (TEE引导下房间隔穿刺) is part of it.
    Rule { code: "88.7202", name: "经食道超声心动图", triggers: &["经食管超声", "经食道超声", "TEE"], needs: &["：", ":", "示", "未见", "见"], excludes: &["引导", "监测", "后复查", "再评估", "未行", "拒绝", "建议", "无此设备", "TEER"] },
    Rule { code: "35.9602", name: "经导管主动脉瓣球囊扩张成形术", triggers: &["主动脉瓣球囊扩张", "BAV", "球囊扩张主动脉瓣"], needs: &[], excludes: &["TAVR前预扩", "预扩张后植入"] },
    // Chinese-medicine treatments a TCM hospital codes from the ICD-9-CM-3 clinical edition's
    // own codes (herbal decoctions and 耳穴压豆 have none). A day's count is one procedure.
    Rule { code: "99.9200x016", name: "电针治疗", triggers: &["电针"], needs: &[], excludes: &["电针经络"] },
    Rule { code: "99.9200x001", name: "头针治疗", triggers: &["头针"], needs: &[], excludes: &[] },
    Rule { code: "99.9200x014", name: "穴位注射治疗", triggers: &["穴位注射"], needs: &[], excludes: &[] },
    Rule { code: "99.9200", name: "针刺", triggers: &["针刺", "毫针"], needs: &[], excludes: &["针刺样", "针刺感", "针刺痛", "如针刺", "针刺伤", "耳穴", "针刺入", "穿刺针"] },
    Rule { code: "93.3500x013", name: "温针灸治疗", triggers: &["温针灸"], needs: &[], excludes: &[] },
    Rule { code: "93.3500x005", name: "艾灸", triggers: &["艾灸", "艾条灸", "悬灸"], needs: &[], excludes: &["温针灸"] },
    Rule { code: "17.9500x018", name: "中药塌渍治疗", triggers: &["中药塌渍", "塌渍"], needs: &[], excludes: &[] },
    Rule { code: "17.9500x005", name: "穴位贴敷治疗", triggers: &["穴位贴敷", "贴敷"], needs: &["穴", "神阙", "涌泉", "关元", "贴敷治疗"], excludes: &["耳穴"] },
    Rule { code: "17.9500x014", name: "中药局部熏洗治疗", triggers: &["中药熏洗", "中药泡洗", "中药足浴"], needs: &[], excludes: &[] },
    Rule { code: "17.9400x001", name: "拔罐治疗", triggers: &["拔罐"], needs: &[], excludes: &["刺络拔罐"] },
    Rule { code: "17.9400x003", name: "刺络拔罐治疗", triggers: &["刺络拔罐"], needs: &[], excludes: &[] },
    Rule { code: "17.9300x001", name: "刮痧治疗", triggers: &["刮痧"], needs: &[], excludes: &[] },
];

/// A code that includes another: the endoscopy with biopsy or haemostasis includes the
/// endoscopy; a pleural drain includes the puncture it went in by.
/// (Not a needle decompression of a pneumothorax, 34.9102, done before the drain went in.)
const INCLUDES: &[(&str, &str)] = &[("45.16", "45.13"), ("44.43", "45.13"), ("34.04", "34.9100"), ("34.04", "34.9101"), ("34.04", "34.9103"), ("34.04", "34.9104")];

/// A code whose extension codes say more of the same procedure: beside one of them (told in
/// another sentence: 予BiPAP…，第6天停无创通气) the plain code is not a second procedure.
/// Ventilation of unstated duration beside the same ventilation with its hours told likewise.
/// Validation applies it to the name's codes too: 血浆置换术 in 手术名称 beside the report's 单膜血浆置换.
pub const GENERIC_BESIDE_SPECIFIC: &[(&str, &str)] =
    &[("93.9000", "93.9000x"), ("37.0x00", "37.0x0"), ("96.7000", "96.71"), ("96.7000", "96.72"), ("39.9500x004", "39.9500x005"), ("39.9500x004", "39.9500x006")];

/// Whether `code` is the plain code of one of `others` that says more of the same procedure.
pub fn generic_beside_specific<S: AsRef<str>>(code: &str, others: &[S]) -> bool {
    GENERIC_BESIDE_SPECIFIC.iter().any(|(g, spec)| code == *g && others.iter().any(|o| o.as_ref() != code && o.as_ref().starts_with(spec)))
}

/// Words of a clause that tell a biopsy was not taken now (未取活检, 嘱8周后复查胃镜并取活检).
const NOT_TAKEN: &[&str] = &["未取", "未行", "未做", "未予", "拒绝", "暂不", "嘱", "复查", "择期", "拟", "建议", "不宜"];

/// Mining under a coding policy (its count codes).
pub struct MineAgent {
    pub policy: Arc<Policy>,
}

/// One mined procedure before it becomes an [`Item`].
struct Found {
    code: String,
    name: String,
    evidence: Evidence,
    /// Further spans of the facts cited.
    more: Vec<Evidence>,
    /// The facts the code came from, described.
    facts: Vec<String>,
    confidence: f32,
}

fn done(text: &str, s: usize, e: usize) -> bool {
    matches!(assertion(text, s, e), Assertion::Present | Assertion::Uncertain)
}

fn ev(section: Section, text: &str, s: usize, e: usize) -> Evidence {
    Evidence { section, start: s, end: e, text: text.chars().skip(s).take(e - s).collect() }
}

/// Every trigger of the table, for one pass over a section that says which of them occur
/// instead of one search of the section per trigger of a growing table.
static TRIGGERS: std::sync::LazyLock<(regex::RegexSet, Vec<(usize, usize)>)> = std::sync::LazyLock::new(|| {
    let mut patterns = Vec::new();
    let mut at = Vec::new();
    for (r, rule) in RULES.iter().enumerate() {
        for (t, trig) in rule.triggers.iter().enumerate() {
            patterns.push(regex::escape(trig));
            at.push((r, t));
        }
    }
    (regex::RegexSet::new(patterns).expect("literal patterns compile"), at)
});

/// Rules from the table.
fn mine_rules(section: Section, text: &str, out: &mut Vec<Found>) {
    let (set, at) = &*TRIGGERS;
    for (r, t) in set.matches(text).into_iter().map(|i| at[i]) {
        let (rule, trig) = (&RULES[r], RULES[r].triggers[t]);
        for (s, e) in find_all(text, trig) {
            let (cl, rel) = clause(text, s, e);
            if (!rule.needs.is_empty() && !contains_any(&cl, rule.needs)) || excluded(&cl, rule.excludes, rel) {
                continue;
            }
            // Told and then not done: 曾考虑临时起搏，…，未予置入.
            let after: String = cl.chars().skip(rel).collect();
            if undone_later(&after) || !done(text, s, e) {
                continue;
            }
            out.push(Found { code: rule.code.into(), name: rule.name.into(), evidence: ev(section, text, s, e), more: Vec::new(), facts: Vec::new(), confidence: 0.85 });
        }
    }
}

/// 推拿 is coded by the condition it treats (17.9200x003 中风后遗症推拿治疗, x005 眩晕…), read from
/// the clause or else the record's diagnoses; the basic technique's code when none is named.
const TUINA_FOR: &[(&[&str], &str, &str)] = &[
    (&["中风", "脑梗死后遗症", "偏瘫", "脑卒中后遗症", "脑梗死恢复期"], "17.9200x003", "中风后遗症推拿治疗"),
    (&["眩晕", "头晕"], "17.9200x005", "眩晕推拿治疗"),
    (&["头痛"], "17.9200x004", "头痛推拿治疗"),
    (&["失眠", "不寐"], "17.9200x006", "失眠推拿治疗"),
    (&["心悸"], "17.9200x009", "心悸推拿治疗"),
    (&["颈椎病"], "17.9200x001", "颈椎病推拿治疗"),
    (&["腰椎间盘突出"], "17.9200x029", "腰椎间盘突出推拿治疗"),
    (&["胃脘痛"], "17.9200x015", "胃脘痛推拿治疗"),
    (&["便秘"], "17.9200x019", "便秘推拿治疗"),
];

fn mine_tuina(rec: &EhrRecord, found: &mut Vec<Found>) {
    for section in SOURCES {
        let text = rec.text(section);
        let Some((s, e)) = find_all(text, "推拿").into_iter().find(|&(s, e)| done(text, s, e)) else { continue };
        let cl = clause(text, s, e).0;
        let diagnoses = [Section::DischargeDiagnosis, Section::AdmissionDiagnosis].map(|d| rec.text(d)).join("；");
        let by = |hay: &str| TUINA_FOR.iter().find(|(words, _, _)| contains_any(hay, words)).map(|&(_, c, n)| (c, n));
        let (code, name) = by(&cl).or_else(|| by(&diagnoses)).unwrap_or(("17.9200x024", "基本手法推拿治疗"));
        found.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
        return;
    }
}

/// Words of an angiography of bypass grafts.
const GRAFT_ANGIOGRAPHY: &[&str] = &["桥血管造影", "桥血管选择性造影", "桥血管开口", "LIMA造影", "SVG造影", "旁路血管造影", "搭桥血管造影", "内乳动脉造影"];

/// After a bypass operation the grafts are imaged with the native arteries: 88.5700x003 多根导管
/// 冠状动脉搭桥术后桥血管造影 is that angiography, in place of the native one's catheter-count code.
fn graft_angiography(rec: &EhrRecord, found: &mut Vec<Found>) {
    let told = SOURCES.iter().find_map(|&section| {
        let text = rec.text(section);
        GRAFT_ANGIOGRAPHY.iter().flat_map(|w| find_all(text, w)).find(|&(s, e)| done(text, s, e)).map(|(s, e)| ev(section, text, s, e))
    });
    let Some(evidence) = told else { return };
    found.retain(|f| !(f.code.starts_with("88.55") || f.code.starts_with("88.56") || f.code.starts_with("88.57")));
    found.push(Found { code: "88.5700x003".into(), name: "多根导管冠状动脉搭桥术后桥血管造影".into(), evidence, more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
}

/// Atrial rhythms a cardioversion may have treated.
const ATRIAL: &[&str] = &["房颤", "心房颤动", "房扑", "心房扑动", "房速", "房性心动过速", "室上速", "室上性心动过速", "AF", "AFL", "SVT"];

/// A cardioversion whose clause names no rhythm (急诊：镇静下同步电复律150J转为窦律) treated the
/// rhythm the record tells of: a ventricular tachycardia's is 99.6200, not atrial 99.6100.
fn ventricular_cardioversion(rec: &EhrRecord, found: &mut [Found]) {
    let told = |words: &[&str]| [Section::AdmissionDiagnosis, Section::DischargeDiagnosis, Section::PresentIllness, Section::ClinicalCourse].iter().any(|&s| contains_any(rec.text(s), words));
    let unnamed: Vec<usize> = found
        .iter()
        .enumerate()
        .filter(|(_, f)| f.code == "99.6100" && !contains_any(&clause(rec.text(f.evidence.section), f.evidence.start, f.evidence.end).0, ATRIAL))
        .map(|(n, _)| n)
        .collect();
    if unnamed.is_empty() || !told(VENTRICULAR) || told(ATRIAL) {
        return;
    }
    for n in unnamed {
        found[n].code = "99.6200".into();
        found[n].name = "心脏其他电抗休克".into();
    }
}

/// Whether a clause tells of what rules a rule out (a gastroscopy's biopsy makes it another
/// code, a contraindication the lysis), not of its absence (未取活检, 无溶栓绝对禁忌，予阿替普酶).
/// A negation that also covers the trigger at `trigger` (未行除颤阈值测试) takes the exclude word
/// with it: the clause still tells of no procedure of the rule.
fn excluded(clause: &str, words: &[&str], trigger: usize) -> bool {
    words.iter().any(|w| {
        find_all(clause, w).into_iter().any(|(s, _)| {
            let before = chars_before(clause, s, 6);
            let own: Vec<char> = before.rsplit(['，', ',']).next().unwrap_or("").chars().collect();
            let negation = own.iter().rposition(|c| matches!(c, '未' | '无' | '不' | '拒')).map(|i| s - own.len() + i);
            !negation.is_some_and(|n| !(n <= trigger && trigger < s))
        })
    })
}

/// Whether the rest of a clause takes the procedure back (…临时起搏，…，未予置入; 取消; 放弃) rather
/// than telling another one not done (…括约肌小切开，未行取石: the stones were left, the
/// incision was made).
fn undone_later(after: &str) -> bool {
    if contains_any(after, &["未置入", "未植入", "未放置", "未安置", "取消", "放弃", "暂不", "不考虑"]) {
        return true;
    }
    const GENERIC: &[&str] = &["置入", "植入", "处理", "治疗", "实施", "操作", "手术", "该", "此", "上述"];
    ["未予", "未行"].iter().any(|w| {
        find_all(after, w).into_iter().any(|(_, e)| {
            let next: String = after.chars().skip(e).take(2).collect();
            next.is_empty() || next.starts_with(|c: char| !c.is_alphanumeric()) || GENERIC.iter().any(|g| next.starts_with(g) || g.starts_with(&next))
        })
    })
}

/// Endoscopic haemostasis by clips, at the site the bleeding lesion is told (胃角溃疡 …
/// 十二指肠未见异常 is the stomach).
fn mine_endoscopic_haemostasis(section: Section, text: &str, out: &mut Vec<Found>) {
    if !(text.contains("胃镜") || text.contains("内镜")) {
        return;
    }
    // A biopsy told anywhere in the endoscopy's section.
    let taken = |s: usize, e: usize| {
        let cl = clause(text, s, e).0;
        done(text, s, e) && !cl.contains("病理:") && !cl.contains("病理：") && !contains_any(&cl, NOT_TAKEN)
    };
    if let Some((s, e)) = ["取活检", "活检", "活组织检查"].iter().flat_map(|w| find_all(text, w)).find(|&(s, e)| taken(s, e)) {
        out.push(Found { code: "45.1600x001".into(), name: "胃十二指肠镜下活检".into(), evidence: ev(section, text, s, e), more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
    }
    // A clip closing the wound a polypectomy left (创面予钛夹封闭) is part of the polypectomy.
    let closes_polypectomy = |s: usize, e: usize| contains_any(&clause(text, s, e).0, &["息肉", "结肠", "直肠", "封闭", "EMR", "ESD"]);
    let Some((s, e)) = ["钛夹", "止血夹", "和谐夹", "金属夹"].iter().flat_map(|w| find_all(text, w)).find(|&(s, e)| done(text, s, e) && !closes_polypectomy(s, e)) else { return };
    let lesion = ["溃疡", "出血灶", "活动性出血", "渗血", "裸露血管"]
        .iter()
        .flat_map(|w| find_all(text, w))
        .filter(|&(ls, le)| matches!(assertion(text, ls, le), Assertion::Present))
        .map(|(ls, le)| clause(text, ls, le).0)
        .next()
        .unwrap_or_default();
    let (code, name) = if lesion.contains("十二指肠") { ("44.4303", "内镜下十二指肠钛夹止血术") } else { ("44.4302", "内镜下胃钛夹止血术") };
    out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
}

/// A ventilation no section times alone (the intubation in the operative note, the extubation
/// in the course) is timed by the record's whole timeline; an intubation and an extubation
/// timed apart are a ventilation, though no ventilation word is written.
fn time_ventilation_across_sections(rec: &EhrRecord, found: &mut Vec<Found>) {
    if found.iter().any(|f| f.code == "96.7100" || f.code == "96.7200") {
        return;
    }
    let Some(hours) = record_ventilation_hours(rec) else { return };
    let (code, name) = if hours >= 96.0 { ("96.7200", "等于或大于96小时连续的持续性侵入性机械性通气") } else { ("96.7100", "少于96小时连续的持续性侵入性机械性通气") };
    if let Some(f) = found.iter_mut().find(|f| f.code == "96.7000") {
        f.code = code.into();
        f.name = name.into();
    } else if let Some(intubation) = found.iter().find(|f| f.code == "96.0400") {
        let evidence = intubation.evidence.clone();
        found.push(Found { code: code.into(), name: name.into(), evidence, more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
    }
}

/// Where the present illness reaches our own hospital (送至我院急诊, 到达急诊后…).
const ARRIVAL: &[&str] = &["我院急诊", "本院急诊", "到达急诊", "到急诊", "来我院", "至我院", "送我院", "入我院", "到达我院", "抵达我院", "来院急诊"];
/// What an emergency department does before the patient reaches the ward.
const EMERGENCY_CODES: &[&str] = &["99.6000", "99.6200", "99.6100", "96.0400", "37.7800", "99.1000"];

/// Resuscitation, defibrillation, intubation, temporary pacing and lysis done in our own
/// emergency department belong to this stay and are coded, though only the present illness
/// tells them (到达急诊后约10分钟室颤，立即予胸外按压，200J非同步电除颤2次…急诊气管插管). What
/// the present illness tells before the patient arrived is another hospital's or the
/// ambulance's, and is not read.
fn mine_our_emergency_department(rec: &EhrRecord, found: &mut Vec<Found>) {
    let text = rec.text(Section::PresentIllness);
    let Some(from) = ARRIVAL
        .iter()
        .flat_map(|w| find_all(text, w))
        .filter(|&(s, e)| !contains_any(&clause(text, s, e).0, &["年前", "月前", "既往", "曾于", "曾在"]))
        .map(|(s, _)| s)
        .min()
    else {
        return;
    };
    // 心肺复苏术后 is the state the patient came in, not a resuscitation told.
    let tail: String = text.chars().skip(from).collect::<String>().replace("心肺复苏术后", "＿＿＿＿术后").replace("复苏术后", "＿＿术后");
    let mut here = Vec::new();
    mine_rules(Section::PresentIllness, &tail, &mut here);
    for mut f in here.into_iter().filter(|f| EMERGENCY_CODES.contains(&f.code.as_str())) {
        f.evidence.start += from;
        f.evidence.end += from;
        found.push(f);
    }
}

/// Central venous catheters by site, and invasive ventilation by duration.
fn mine_critical_care(section: Section, text: &str, out: &mut Vec<Found>) {
    for trig in ["深静脉置管", "中心静脉置管", "中心静脉导管", "PICC", "CVC", "中心静脉穿刺", "颈内静脉置管", "锁骨下静脉置管", "股静脉置管", "双腔导管"] {
        for (s, e) in find_all(text, trig) {
            let (cl, _) = clause(text, s, e);
            // A catheter taken out (拔除CVC) beside the one placed (置入PICC，拔除CVC) is not
            // this one.
            let taken_out = chars_before(text, s, 3).contains('拔');
            let cl = if taken_out { cl } else { cl.replace("拔除CVC", "").replace("拔除颈内静脉CVC", "").replace("拔除中心静脉导管", "") };
            // Placed, not used (经CVC补钾); a central catheter used as a chest drain is the drain.
            // 右颈内静脉CVC: the catheter named by its site is one placed.
            let placed = contains_any(&cl, &["置入", "置管", "穿刺", "留置", "放置", "静脉CVC"]);
            if cl.contains("拔除") || cl.contains("透析") || cl.contains("胸腔") || cl.contains("胸膜") || !placed || !done(text, s, e) {
                continue;
            }
            // The site decides; 外周 alone may be the veins that failed (外周静脉通路建立困难). A
            // clause that names none has the site its section names (右腹股沟韧带下…进针).
            let site = |t: &str| -> Option<&str> {
                if t.contains("股静脉") || t.contains("腹股沟") {
                    Some("femoral")
                } else if t.contains("锁骨下") {
                    Some("subclavian")
                } else if t.contains("颈内") {
                    Some("jugular")
                } else {
                    None
                }
            };
            let at = site(&cl).or_else(|| if contains_any(&cl, &["PICC", "经外周"]) { None } else { site(text) });
            let (code, name) = if at == Some("femoral") {
                ("38.9304", "股静脉穿刺置管术")
            } else if at == Some("subclavian") {
                ("38.9303", "锁骨下静脉穿刺中心静脉置管术")
            } else if cl.contains("PICC") || cl.contains("经外周") {
                ("38.9301", "经外周静脉穿刺中心静脉置管术")
            } else {
                ("38.9302", "颈内静脉穿刺中心静脉置管术")
            };
            out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
        }
    }
    // Invasive ventilation is one code for the stay, by the longest duration told where it is
    // told (机械通气共16天, 本次共呼吸机辅助呼吸102小时), 96.7000 when none is; an hour in a
    // clause about something else (2小时后SpO2仍<88%) is no duration.
    let mut told: Option<(usize, usize)> = None;
    let mut hours: Option<f64> = None;
    for trig in ["有创呼吸机", "呼吸机辅助通气", "机械通气", "有创通气", "呼吸机辅助呼吸", "接呼吸机", "有创机械通气"].iter().chain(VENTILATOR_MODES) {
        for (s, e) in find_all(text, trig) {
            let (cl, rel) = clause(text, s, e);
            // From the trigger to the next comma or bracket (机械通气共约72小时), or the piece
            // after it that sums up (自第1天14:00至第5天拔管，共4天（98小时）).
            let rest: Vec<char> = cl.chars().skip(rel).collect();
            let pieces: Vec<String> = rest.split(|c| matches!(c, '，' | ',' | '。' | '；')).map(|p| p.iter().collect()).collect();
            let first: String = pieces.first().map(|p| p.chars().take_while(|c| !matches!(c, '）' | ')')).collect()).unwrap_or_default();
            let part_hours = ventilation_hours(&first).or_else(|| {
                pieces.get(1).filter(|p| ["共", "累计", "总", "约", "持续"].iter().any(|w| p.starts_with(w))).and_then(|p| ventilation_hours(p))
            });
            if cl.contains("无创") || (!done(text, s, e) && part_hours.is_none()) {
                continue;
            }
            if part_hours.is_some_and(|h| hours.is_none_or(|best| h > best)) {
                hours = part_hours;
                told = Some((s, e));
            } else if told.is_none() {
                told = Some((s, e));
            }
        }
    }
    // (Timed only where the section tells of a ventilation or an intubation: the timeline
    // reads every timestamp of the section.)
    if hours.is_none() && (told.is_some() || text.contains("插管")) {
        hours = timeline_ventilation_hours(text);
        // Intubated at one time and extubated at another (01-18 21:40 经口气管插管 … 01-27 10:20
        // 拔除气管插管): ventilated between, though no ventilation word is written.
        if told.is_none() && hours.is_some() {
            told = ["气管插管", "气管内插管", "经口插管"].iter().flat_map(|w| find_all(text, w)).find(|&(s, e)| done(text, s, e));
        }
    }
    if let Some((s, e)) = told {
        let (code, name) = match hours {
            Some(h) if h >= 96.0 => ("96.7200", "等于或大于96小时连续的持续性侵入性机械性通气"),
            Some(_) => ("96.7100", "少于96小时连续的持续性侵入性机械性通气"),
            None => ("96.7000", "未特指时间的持续性侵入性机械性通气"),
        };
        out.push(Found { code: code.into(), name: name.into(), evidence: ev(section, text, s, e), more: Vec::new(), facts: Vec::new(), confidence: 0.8 });
    }
}

/// Where no duration is told, the notes' timestamps tell it: the time of the note (or the time
/// in it) that intubates, to the one that extubates, weans or records the death
/// (2026-03-02 03:15 …经口气管插管… 2026-03-06 01:45 …拔除气管插管 → 94.5 h). Answers nothing
/// when either end has no time of its own.
fn timeline_ventilation_hours(text: &str) -> Option<f64> {
    ventilation_hours_between(&[text], None)
}

const VENTILATION_STARTS: &[&str] = &["气管插管", "气管内插管", "经口插管", "经鼻插管", "接呼吸机", "呼吸机辅助", "有创机械通气", "有创通气"];
const VENTILATION_ENDS: &[&str] = &["拔除气管插管", "拔除气管导管", "拔管", "撤机", "脱机", "撤离呼吸机", "停用呼吸机", "宣告临床死亡", "宣告死亡", "临床死亡"];

fn find_any<'a>(text: &'a str, words: &'a [&str]) -> impl Iterator<Item = (usize, usize)> + 'a {
    words.iter().flat_map(move |w| find_all(text, w))
}

/// Where a section starts an invasive ventilation (not an extubation, not a non-invasive one).
fn ventilation_starts(text: &str) -> impl Iterator<Item = usize> + '_ {
    find_any(text, VENTILATION_STARTS).chain(find_any(text, VENTILATOR_MODES)).filter(|&(s, e)| {
        let before: String = text.chars().skip(s.saturating_sub(3)).take(s.min(3)).collect();
        done(text, s, e) && !before.contains("拔") && !clause(text, s, e).0.contains("无创")
    }).map(|(s, _)| s)
}

/// The hours between the intubation one section times and the extubation (weaning, death)
/// another does: an operative note's 12-03 19:50 经口气管插管 and the course's 12.06 17:30 拔管
/// (70 h). Every start and end is placed by its own timestamp, so the sections' order does not
/// matter; dates without their year take the record's first year.
fn record_ventilation_hours(rec: &EhrRecord) -> Option<f64> {
    let texts: Vec<&str> = SOURCES.iter().map(|&s| rec.text(s)).filter(|t| !t.is_empty()).collect();
    let year = texts.iter().find_map(|t| first_year(t));
    ventilation_hours_between(&texts, year)
}

/// The earliest timed start of an invasive ventilation in these texts to the first timed end
/// after it, each placed by the timestamp written before it (dates without their year take
/// `year`).
fn ventilation_hours_between(texts: &[&str], year: Option<i64>) -> Option<f64> {
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    for text in texts {
        let stamps = timestamps(text, year);
        let at = |pos: usize| stamps.iter().rev().find(|(p, _)| *p <= pos).and_then(|(_, m)| *m);
        starts.extend(ventilation_starts(text).filter_map(at));
        ends.extend(find_any(text, VENTILATION_ENDS).filter_map(|(s, _)| at(s)));
    }
    let start = starts.into_iter().min()?;
    let end = ends.into_iter().filter(|&e| e > start).min()?;
    Some((end - start) as f64 / 60.0)
}

/// The first year a section writes in a date (2024-03-25, 2024年3月).
fn first_year(text: &str) -> Option<i64> {
    let chars: Vec<char> = text.chars().collect();
    (0..chars.len().saturating_sub(4)).find_map(|i| {
        let digits = chars[i..i + 4].iter().all(char::is_ascii_digit) && (i == 0 || !chars[i - 1].is_ascii_digit());
        let year: i64 = if digits { chars[i..i + 4].iter().collect::<String>().parse().ok()? } else { return None };
        ((1900..2200).contains(&year) && matches!(chars[i + 4], '-' | '/' | '年' | '.')).then_some(year)
    })
}

/// The timestamps of notes written day by day, by char offset: each time of day (03:15) with
/// the date last written before it (2026-03-02, 3-21, 12.06 at a note's head, 3月21日), in
/// minutes; a date alone answers `None` (its time is not known). A date without its year takes
/// the last year written, else `year`. Ratios such as 1:1 are not times.
fn timestamps(text: &str, year: Option<i64>) -> Vec<(usize, Option<i64>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut day: Option<i64> = None;
    let mut last_year = year.unwrap_or(2000);
    let mut i = 0;
    let number = |from: usize| {
        let mut j = from;
        while j < chars.len() && chars[j].is_ascii_digit() {
            j += 1;
        }
        (chars[from..j].iter().collect::<String>().parse::<i64>().ok(), j)
    };
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        let (Some(a), j) = number(i) else {
            i += 1;
            continue;
        };
        let sep = chars.get(j).copied();
        match sep {
            // 2026-03-02, 2026/3/2, 3-21, 3月21日, 12.06 17:30
            Some('-' | '/' | '月' | '.') if chars.get(j + 1).is_some_and(char::is_ascii_digit) => {
                let (Some(b), k) = number(j + 1) else {
                    i = j;
                    continue;
                };
                let with_year = a >= 1900 && matches!(chars.get(k), Some('-' | '/'));
                // A month and day without the year only where it heads a note (3-21 07:10) or
                // says 日 (3月21日): 3-5次 is a range, 3.5 a number.
                let at_line_start = i == 0 || chars[i - 1] == '\n';
                let before_time = chars.get(k) == Some(&' ') && chars.get(k + 1).is_some_and(char::is_ascii_digit);
                let heads_note = if sep == Some('.') { at_line_start && before_time } else { at_line_start || before_time };
                if !with_year && !(if sep == Some('月') { chars.get(k) == Some(&'日') } else { heads_note }) {
                    i = k;
                    continue;
                }
                let (y, m, d, next) = if with_year {
                    match number(k + 1) {
                        (Some(c), n) => (a, b, c, n),
                        _ => (a, b, 1, k),
                    }
                } else {
                    (last_year, a, b, k)
                };
                if (1..=12).contains(&m) && (1..=31).contains(&d) {
                    last_year = y;
                    day = Some(days_from_civil(y, m, d));
                    out.push((i, None));
                }
                i = next;
            }
            Some(':' | '：') if (0..24).contains(&a) => {
                let (min, k) = number(j + 1);
                match (min, day) {
                    (Some(mm), Some(dd)) if k == j + 3 && mm < 60 => out.push((i, Some(dd * 1440 + a * 60 + mm))),
                    _ => {}
                }
                i = k.max(j + 1);
            }
            _ => i = j,
        }
    }
    out
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// "机械通气5天" → 120 h; "通气72小时" → 72 h.
fn ventilation_hours(cl: &str) -> Option<f64> {
    let chars: Vec<char> = cl.chars().collect();
    for (i, c) in chars.iter().enumerate() {
        // 第5天 is a day of the stay, 14:00 a time of day: no durations.
        if c.is_ascii_digit() && (i == 0 || !chars[i - 1].is_ascii_digit() && chars[i - 1] != '第' && chars[i - 1] != ':' && chars[i - 1] != '：') {
            let mut j = i;
            while j < chars.len() && chars[j].is_ascii_digit() {
                j += 1;
            }
            let n: f64 = chars[i..j].iter().collect::<String>().parse().ok()?;
            let unit: String = chars[j..(j + 2).min(chars.len())].iter().collect();
            if unit.starts_with('天') || unit.starts_with('日') {
                return Some(n * 24.0);
            }
            if unit.starts_with("小时") || unit.starts_with('h') {
                return Some(n);
            }
        }
    }
    None
}

/// What mining found: the procedures done, in record order, each with the facts it came from
/// (empty for the phrase rules), and the facts left uncoded (failed, planned) with why.
#[derive(Clone)]
pub struct Mined {
    pub items: Vec<Item>,
    /// Per item (same order): the facts cited, described for the trace and the Provenance.
    pub cited: Vec<String>,
    pub not_coded: Vec<String>,
}

thread_local! {
    /// Inside one coding: the last record mined, by its text and policy.
    static LAST: std::cell::RefCell<Option<(u64, Mined)>> = const { std::cell::RefCell::new(None) };
    static IN_CODING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs one record's coding with mining remembered: the mining and the validation stage both
/// read the whole record (the validation's reading was a fifth of the coding time), and
/// inside one coding the record and the policy do not change. Nothing outlives the call.
pub fn within_one_coding<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            IN_CODING.with(|c| c.set(self.0));
            LAST.with(|l| *l.borrow_mut() = None);
        }
    }
    let _reset = Reset(IN_CODING.with(|c| c.replace(true)));
    LAST.with(|l| *l.borrow_mut() = None);
    f()
}

/// The procedures the record's report and notes tell were done (remembered within one coding).
pub fn mine_record(rec: &EhrRecord, policy: &Policy) -> Mined {
    use std::hash::{Hash, Hasher};
    if !IN_CODING.with(|c| c.get()) {
        return read_and_mine(rec, policy);
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (policy as *const Policy as usize).hash(&mut h);
    for section in Section::ALL {
        rec.text(section).hash(&mut h);
    }
    let key = h.finish();
    if let Some(hit) = LAST.with(|l| l.borrow().as_ref().filter(|(k, _)| *k == key).map(|(_, m)| m.clone())) {
        return hit;
    }
    let mined = read_and_mine(rec, policy);
    LAST.with(|l| *l.borrow_mut() = Some((key, mined.clone())));
    mined
}

fn read_and_mine(rec: &EhrRecord, policy: &Policy) -> Mined {
    let told = read_record(rec);
    let facts = code_facts(&told, policy);
    let mut found = Vec::new();
    for c in &facts.coded {
        let cited: Vec<&super::procedure_facts::Told> = c.facts.iter().map(|&i| &told[i]).collect();
        let Some(first) = cited.first() else { continue };
        found.push(Found {
            code: c.code.clone(),
            name: c.rule.clone(),
            evidence: Evidence { section: first.span.section, start: first.span.start, end: first.span.end, text: first.span.text.clone() },
            more: cited.iter().skip(1).take(2).map(|t| Evidence { section: t.span.section, start: t.span.start, end: t.span.end, text: t.span.text.clone() }).collect(),
            facts: cited.iter().map(|t| t.describe()).collect(),
            confidence: 0.85,
        });
    }
    for section in SOURCES {
        let text = rec.text(section);
        if !text.is_empty() {
            mine_rules(section, text, &mut found);
            mine_critical_care(section, text, &mut found);
            mine_endoscopic_haemostasis(section, text, &mut found);
        }
    }
    time_ventilation_across_sections(rec, &mut found);
    mine_our_emergency_department(rec, &mut found);
    ventricular_cardioversion(rec, &mut found);
    mine_tuina(rec, &mut found);
    graft_angiography(rec, &mut found);
    // Each item with the facts it cites, until the last filter.
    let mut mined: Vec<(Item, String)> = Vec::new();
    for f in found {
        if let Some((existing, _)) = mined.iter_mut().find(|(i, _)| i.code.as_deref() == Some(&f.code)) {
            if existing.evidence.len() < 3 {
                existing.evidence.push(f.evidence);
            }
            continue;
        }
        let cited = if f.facts.is_empty() { String::new() } else { format!("facts: {}", f.facts.join("; ")) };
        let mut evidence = vec![f.evidence.clone()];
        evidence.extend(f.more);
        // The mention is the clinician's words (the report's span), as Procedure.code.text.
        mined.push((Item { name: f.name.clone(), code: Some(f.code), mention: f.evidence.text, evidence, confidence: f.confidence, origin: "mine".into() }, cited));
    }
    let codes: Vec<String> = mined.iter().filter_map(|(i, _)| i.code.clone()).collect();
    mined.retain(|(i, _)| {
        let c = i.code.as_deref().unwrap_or("");
        let included = INCLUDES.iter().any(|(by, inc)| c.starts_with(inc) && codes.iter().any(|o| o.starts_with(by)));
        let generic = generic_beside_specific(c, &codes);
        !included && !generic
    });
    let (items, cited) = mined.into_iter().unzip();
    Mined { items, cited, not_coded: facts.not_coded }
}

impl Agent for MineAgent {
    fn info(&self) -> AgentInfo {
        AgentInfo { role: Role::MineProcedures, backend: "knowledge".into(), model: "rules".into(), version: env!("CARGO_PKG_VERSION").into() }
    }

    fn run(&self, input: AgentInput<'_>) -> Result<AgentOutput, AgentError> {
        let mut out = AgentOutput { items: input.items, ..Default::default() };
        let Mined { items: mined, cited, not_coded } = mine_record(input.record, &self.policy);
        for (m, facts) in mined.into_iter().zip(cited) {
            // Facts are described without the clinical text itself; a phrase rule by its name.
            let why = if facts.is_empty() { format!("rule {}", m.name) } else { facts };
            let code = m.code.clone().unwrap_or_default();
            if out.items.iter().any(|i| i.code.as_deref() == Some(code.as_str())) {
                continue;
            }
            // The report decides the count and the technique: a count or an angiography code
            // from the name gives way to the one the facts give.
            if let Some(at) = out.items.iter().position(|i| i.code.as_deref().is_some_and(|c| same_family(c, &code))) {
                let old = out.items.remove(at);
                out.notes.push(format!("replaced {} from the name by {code}: {why}", old.code.as_deref().unwrap_or("")));
                out.removed.push(crate::agents::Removal { item: old, reason: format!("the operative report gives {code}") });
            } else {
                out.notes.push(format!("mined {code} from {}: {why}", m.evidence[0].section.key()));
            }
            out.items.push(m);
        }
        out.notes.extend(not_coded.into_iter().map(|f| format!("not coded: {f}")));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(rec: &EhrRecord) -> Vec<String> {
        let policy = Policy::load(None, &crate::terminology::policy::Unchecked).unwrap();
        mine_record(rec, &policy).items.into_iter().filter_map(|i| i.code).collect()
    }

    #[test]
    fn pci_report_yields_stent_balloon_angiography_and_counts() {
        let rec = EhrRecord::new("t").with(
            Section::OperativeReport,
            "经右桡动脉穿刺，以TIG导管行冠脉造影示前降支近段狭窄90%，回旋支中段狭窄80%。于前降支行球囊预扩张后置入药物洗脱支架1枚；于回旋支置入支架1枚，手术顺利。",
        );
        let c = codes(&rec);
        for want in ["88.5500", "36.0700", "00.6600x004", "00.4600", "00.4100"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }

    #[test]
    fn planned_refused_and_history_are_not_procedures() {
        let rec = EhrRecord::new("t")
            .with(Section::ClinicalCourse, "建议行冠脉造影，患者拒绝行PCI。既往冠状动脉支架植入术后。")
            .with(Section::ProgressNotes, "未行IABP。");
        assert!(codes(&rec).is_empty(), "{:?}", codes(&rec));
    }

    #[test]
    fn ventilation_duration_and_pacemaker_leads() {
        let rec = EhrRecord::new("t")
            .with(Section::ClinicalCourse, "行气管插管，有创呼吸机辅助通气5天。")
            .with(Section::OperativeReport, "行双腔永久起搏器植入术，过程顺利。");
        let c = codes(&rec);
        for want in ["96.0400", "96.7200", "37.8301", "37.7200"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }

    /// A device service's and a long ICU stay's wordings: generators by model, a leadless
    /// pacemaker, revisions of a lead or a pocket, graft angiography, ERCP stones, a ureteral
    /// stent, TAVR, catheters by their abbreviations, ventilation from intubation to extubation.
    #[test]
    fn device_revisions_and_long_icu_stays_are_coded_as_the_conventions_say() {
        let op = |t: &str| codes(&EhrRecord::new("t").with(Section::OperativeReport, t));
        let course = |t: &str| codes(&EhrRecord::new("t").with(Section::ClinicalCourse, t));
        let c = op("RA lead 5076于右心耳，RV lead 3830于左束支区域。连接 Medtronic Azure XT DR MRI，程控DDD 60/130bpm。");
        assert!(c.contains(&"37.8301".to_string()) && c.contains(&"37.7200".to_string()), "{c:?}");
        assert_eq!(op("经右股静脉送入Micra无导线起搏器，释放于右室间隔，牵拉试验固定良好。"), ["37.8101"]);
        let c = op("打开原囊袋，游离右室电极，回撤后重新送入，固定于右室间隔部。原脉冲发生器连接后放回囊袋，缝合。");
        assert!(c.contains(&"37.7501".to_string()) && !c.iter().any(|x| x.starts_with("37.85") || x.starts_with("37.87")), "{c:?}");
        assert_eq!(op("沿原切口切开囊袋，清除暗红色血凝块及积血约70ml，电凝止血，放回脉冲发生器。"), ["37.7900"]);
        assert_eq!(op("超声引导下用22G穿刺针刺入瘤腔，注入凝血酶溶液500U，瘤腔血流消失。"), ["39.7900"]);
        let c = op("JL4导管行左冠造影，JR4导管行右冠造影；经JR4导管行SVG-PDA桥血管选择性造影，更换IMA导管行LIMA造影。");
        assert!(c.contains(&"88.5700x003".to_string()) && !c.iter().any(|x| x.starts_with("88.56")), "{c:?}");
        let mut c = course("ERCP：行乳头括约肌切开（EST），取石球囊取出结石1枚。");
        c.sort();
        assert_eq!(c, ["51.8503", "51.8800"]);
        assert!(!course("仅行EST，未行取石。患者要求1个月后再入院取石。").contains(&"51.8800".to_string()));
        assert_eq!(course("急诊经膀胱镜沿导丝置入F6双J管1根。"), ["59.8x03"]);
        assert_eq!(course("经股动脉TAVR：自膨胀式瓣膜26mm植入，释放满意。"), ["35.0502"]);
        assert_eq!(course("经股动脉TAVI：球扩式瓣膜植入，释放满意。"), ["35.0501"]);
        let c = course("入CCU：右颈内静脉CVC，左桡动脉置管。床旁纤支镜BAL，BALF送培养。");
        assert!(c.contains(&"38.9302".to_string()) && c.contains(&"33.2400x002".to_string()), "{c:?}");
        let c = course("01-18 21:40 HFNC失败，经口气管插管，肺保护性通气。\n01-27 10:20 拔除气管插管，序贯HFNC。");
        assert!(c.contains(&"96.7200".to_string()) && c.contains(&"96.0400".to_string()), "{c:?}");
    }

    /// A chest-pain centre's terse notes: abbreviations, half-width stops, a rhythm told
    /// elsewhere in the record, a catheter in the lysis's sentence that is a nasal one.
    #[test]
    fn a_chest_pain_centres_terse_notes_are_coded_as_the_conventions_say() {
        let course = |t: &str| codes(&EhrRecord::new("t").with(Section::ClinicalCourse, t));
        let vt = EhrRecord::new("t").with(Section::PresentIllness, "ECG:宽QRS心动过速,HR 192bpm,考虑VT.").with(Section::ClinicalCourse, "急诊:咪达唑仑镇静下同步电复律150J 1次转为窦律.");
        assert_eq!(codes(&vt), ["99.6200"], "a ventricular tachycardia's cardioversion");
        let af = EhrRecord::new("t").with(Section::AdmissionDiagnosis, "1.阵发性心房颤动").with(Section::ClinicalCourse, "镇静下同步电复律150J转为窦律。");
        assert_eq!(codes(&af), ["99.6100"]);
        assert_eq!(course("入院K 6.3mmol/L,当日床旁HD 1次.HDL-C 0.9mmol/L."), ["39.9500"]);
        assert_eq!(course("立即左锁骨中线第2肋间14G留置针穿刺排气。"), ["34.9102"]);
        assert_eq!(course("急诊科予阿替普酶50mg静滴2h。溶栓后SpO2 95%(鼻导管3L/min)。讨论下腔静脉滤器,因已抗凝,未放置。"), ["99.1000"]);
        assert_eq!(course("高危PE,无溶栓绝对禁忌,急诊科予阿替普酶50mg静滴2h。"), ["99.1000"], "no contraindication is no exclusion");
        let c = course("经右股静脉置管至肺动脉内，予尿激酶导管溶栓。");
        assert!(c.contains(&"99.1007".to_string()) && !c.contains(&"99.1000".to_string()), "{c:?}");
        assert!(codes(&EhrRecord::new("t").with(Section::OperativeReport, "三根电极连接CRT-D脉冲发生器。本例未行除颤阈值测试。")).iter().all(|c| c != "99.6200"));
    }

    /// Wordings other hospitals use: a biopsy not taken, a specific ventilation code beside the
    /// plain one told when it stopped, pericardiocentesis by its guidance, a generator
    /// replaced with its leads kept, cryoablation by the veins it isolated, radiofrequency
    /// energy told only as its discharge.
    #[test]
    fn other_hospitals_wordings_are_coded_as_the_conventions_say() {
        let scope = |s: Section, t: &str| codes(&EhrRecord::new("t").with(s, t));
        let c = scope(Section::OperativeReport, "胃镜：食管下段黏膜破损，胃窦黏膜充血。未取活检。");
        assert!(c.contains(&"45.1300x004".to_string()) && !c.iter().any(|x| x.starts_with("45.16")), "{c:?}");
        // The biopsy not taken in the gastroscopy's own clause does not make it another code.
        let c = scope(Section::ClinicalCourse, "消化科会诊后行胃镜检查：慢性浅表性胃炎，食管黏膜未见破损，未取活检。");
        assert_eq!(c, ["45.1300x004"]);
        let c = scope(Section::OperativeReport, "急诊胃镜：胃角溃疡，中央裸露血管，予钛夹3枚夹闭。因出血风险未取活检。嘱8周后复查胃镜并取活检。");
        assert_eq!(c, ["44.4302"], "clips at the stomach, no biopsy");
        let c = scope(Section::ClinicalCourse, "予BiPAP无创呼吸机辅助通气，每日12小时，共5天。第6天停无创通气，改鼻导管吸氧。");
        assert_eq!(c, ["93.9000x002"]);
        let c = scope(Section::OperativeReport, "超声引导下取剑突下入路穿刺心包腔，置入猪尾引流管，引流420ml。");
        assert_eq!(c, ["37.0x01"]);
        let c = scope(Section::OperativeReport, "沿原切口切开囊袋，游离原CRT-P脉冲发生器，测试三根电极参数良好，保留原电极。连接新CRT-P脉冲发生器，置入囊袋。");
        assert!(c.contains(&"37.8700x002".to_string()) && !c.iter().any(|x| x == "37.7200" || x == "37.8300x002"), "{c:?}");
        let c = scope(Section::OperativeReport, "房间隔穿刺后送入28mm冷冻球囊，依次对LSPV、LIPV、RSPV、RIPV行冷冻消融，验证肺静脉传入、传出阻滞。");
        assert!(c.contains(&"37.3400x001".to_string()) && c.contains(&"37.3403".to_string()), "{c:?}");
        let c = scope(Section::OperativeReport, "心内电生理检查诱发顺向型房室折返性心动过速。于二尖瓣环左侧壁标测到最早心室激动点，放电8秒δ波消失，巩固放电60秒。");
        assert!(c.contains(&"37.3401".to_string()) && c.contains(&"37.2600".to_string()), "{c:?}");
    }

    /// Counting over a report as other cath labs write it: a wire to another coronary tree
    /// after a guide change moves the vessel treated, a wire to protect a branch does not, a
    /// guide seated at the left main treats nothing, a balloon told apart from its dilation
    /// (POBA) treats its vessel, a catheter exchanged for another curve counts, an aspiration
    /// catheter is thrombus aspiration.
    #[test]
    fn vessels_and_catheters_are_counted_over_the_whole_report() {
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "JL4/JR4造影示LAD、RCA重度狭窄。6F EBU3.5 GC，导丝至LAD，2.5×20mm球囊预扩LAD，植入3.0×29mm DES。更换6F JR4指引导管，SION导丝至RCA远端，2.5×20mm球囊预扩，自远至近植入3.0×33mm及3.5×24mm DES两枚。"));
        assert!(c.contains(&"00.4100".to_string()) && c.contains(&"00.4700".to_string()), "LAD and RCA, three stents: {c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "JL3.5、JR4造影导管造影。7F EBU3.75指引导管至LM，旋磨导丝送至LAD远端，旋磨后2.5×15mm NC球囊预扩张，于LAD中段植入2.75×24mm DES，近段植入3.0/38 DES。"));
        assert!(c.contains(&"00.4000".to_string()) && c.contains(&"00.4600".to_string()) && c.contains(&"88.5600".to_string()), "one vessel, the guide's LM is none: {c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "JL4/JR4造影。SION导丝至LCX远端，另一SION导丝至OM1远端。球囊预扩张LCX后植入3.0×24mm DES 1枚。OM1病变以2.0×15mm球囊12atm扩张(POBA)，残余狭窄20%，未植入支架。"));
        assert!(c.contains(&"00.4100".to_string()) && c.contains(&"00.4500".to_string()), "LCX stented, OM1 dilated: {c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "5F JL4导管难以进入左冠口，更换5F JL3.5导管完成左冠造影。5F JR4导管行右冠造影。SION导丝至PLA远端，BMW导丝至PDA保护。球囊预扩PLA，植入2.5×18mm DES。"));
        assert!(c.contains(&"88.5701".to_string()) && c.contains(&"00.4000".to_string()), "three catheters, the protected PDA untreated: {c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "TIG导管造影示LAD闭塞。导丝通过后见大量血栓影，以Export抽吸导管反复抽吸4次，于LAD植入DES一枚。"));
        assert!(c.contains(&"17.5500x003".to_string()), "{c:?}");
    }

    /// An infected system taken out: the generator, the leads and the pocket's debridement, each
    /// its own code, the temporary pacing with an external generator too; a generator taken out
    /// for its replacement, with a new lead beside a failed one, is the replacement and the lead;
    /// an ICM by its brand; a pericardiocentesis under real-time ultrasound told without the
    /// word; a resuscitation in the reasoning is none done now.
    #[test]
    fn extraction_lead_replacement_monitors_and_told_procedures() {
        let c = codes(&EhrRecord::new("t").with(
            Section::OperativeReport,
            "一、临时起搏：经右颈内静脉送入主动电极至右室，连接外置起搏器（体外半永久临时起搏）。二、拔除：切开囊袋，取出脉冲发生器，以机械鞘先后完整拔除心室电极及心房电极。三、清创：切除感染包膜，冲洗后缝合。",
        ));
        for want in ["37.7800", "37.8901", "37.7701", "37.7901"] {
            assert!(c.contains(&want.to_string()), "{want}: {c:?}");
        }
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "取出原脉冲发生器。原心房电极功能障碍，封帽旷置。送入新主动固定电极至右心耳。"));
        assert!(c.contains(&"37.7600".to_string()) && !c.contains(&"37.8901".to_string()), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "保留原电极，未植入新电极。"));
        assert!(!c.contains(&"37.7600".to_string()), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "局麻下切开皮肤约8mm，将Reveal LINQ植入皮下。"));
        assert_eq!(c, vec!["37.7900x004"]);
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "超声实时引导下剑突下进针，抽出血性液体，经导丝置入猪尾引流导管（留置心包腔内）。"));
        assert_eq!(c, vec!["37.0x01"]);
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "cTnI轻度升高考虑与CPR及电除颤相关。结合复苏、电除颤史，不支持急性心梗。"));
        assert!(c.is_empty(), "{c:?}");
    }

    /// What CCU notes tell without the procedure's own word: a thrombolytic by name and dose,
    /// cooling after an arrest, a catheter used (经CVC补钾) or made a chest drain is no new line,
    /// an ultrasound-guided thoracentesis, a clip by its brand.
    #[test]
    fn ccu_notes_tell_procedures_by_drug_device_and_guidance() {
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "排除溶栓禁忌。15:20 阿替普酶50mg（10mg静推，余40mg 2h泵入）。尿激酶封管。"));
        assert_eq!(c.iter().filter(|x| x.starts_with("99.10")).count(), 1, "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "启动目标温度管理，膀胱温33℃维持24h。氯化钾经CVC 20mmol/h补充。超声定位下置入单腔中心静脉导管作胸腔引流管。"));
        assert!(c.contains(&"99.8100".to_string()) && !c.iter().any(|x| x.starts_with("38.93")), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "于超声引导下行右侧胸腔穿刺抽液，抽出淡黄色液体800ml。"));
        assert_eq!(c, vec!["34.9103"]);
        // A drain left in is the drain, not a tap; a catheter in the pleural space is no line.
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "行右侧胸腔穿刺置管引流术，置入单腔中心静脉导管于胸膜腔内约12cm，首次引流600ml。"));
        assert_eq!(c, vec!["34.0401"]);
        // The site decides, not the peripheral veins that failed.
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "因外周静脉通路建立困难，行右股静脉穿刺中心静脉置管术。"));
        assert_eq!(c, vec!["38.9304"]);
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "经口插入电子胃镜，十二指肠球部溃疡活动性渗血，以和谐夹3枚夹闭溃疡出血处。"));
        assert_eq!(c, vec!["44.4303"]);
    }

    /// Notes written day by day tell the hours by their timestamps: intubated at 03:15 on the
    /// 2nd, extubated at 01:45 on the 6th is 94.5 h, under 96; a day later it is over 96. A
    /// conditional intubation (如…需气管插管) is not one.
    #[test]
    fn ventilation_hours_from_the_notes_timestamps() {
        let course = |end: &str| {
            format!("2026-03-02 01:10 入CCU，IABP 1:1反搏。\n2026-03-02 03:15 咳粉红色泡沫痰，予经口气管插管，接呼吸机PC模式。\n2026-03-04 10:00 IABP改1:2，每次3-5min。\n{end} SBT通过，拔除气管插管，改鼻导管吸氧。")
        };
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, &course("2026-03-06 01:45")));
        assert!(c.contains(&"96.7100".to_string()) && c.contains(&"96.0400".to_string()), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, &course("2026-03-07 08:00")));
        assert!(c.contains(&"96.7200".to_string()), "{c:?}");
        // A time in the extubating note itself, after a date alone.
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "3-21 07:10 入科，GCS 3分，呼吸机A/C模式。\n3-21 21:58 心室静止，CPR 30min无效，22:41宣告临床死亡。"));
        assert!(c.contains(&"96.7100".to_string()), "{c:?}");
        // Without times the duration stays unknown.
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "3月2日 予气管插管接呼吸机。3月8日 拔除气管插管。"));
        assert!(c.contains(&"96.7000".to_string()), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "予BiPAP无创通气。告知家属如2h内血气无改善，需气管插管有创通气，家属签字同意。2h后神志转清，暂不插管。"));
        assert!(!c.iter().any(|x| x.starts_with("96.7") || x == "96.0400"), "{c:?}");
    }

    /// Lines by what the clause places: a PICC placed while the CVC is taken out, a temporary
    /// dialysis catheter told as 血透临时导管, a double-lumen catheter by its vein.
    #[test]
    fn lines_placed_beside_lines_taken_out() {
        let course = |t: &str| codes(&EhrRecord::new("t").with(Section::ClinicalCourse, t));
        assert_eq!(course("11-25右贵要静脉置入PICC，拔除CVC。"), ["38.9301"]);
        assert!(course("拔除PICC，改外周静脉输液。").is_empty());
        assert!(course("01-12 09:40 左股静脉置入血透临时导管，行CRRT（CVVH）。").contains(&"38.9502".to_string()));
        assert!(course("床旁超声引导下右股静脉穿刺，置入12F双腔导管。").contains(&"38.9304".to_string()));
    }

    /// Within one coding a record is mined once and remembered by its text; another text is
    /// mined afresh, and nothing is remembered once the coding is over.
    #[test]
    fn mining_is_remembered_only_within_one_coding() {
        let policy = Policy::load(None, &crate::terminology::policy::Unchecked).unwrap();
        let a = EhrRecord::new("a").with(Section::ClinicalCourse, "当日床旁HD 1次。");
        let b = EhrRecord::new("a").with(Section::ClinicalCourse, "予经口气管插管，接呼吸机。");
        let codes_of = |r: &EhrRecord| mine_record(r, &policy).items.into_iter().filter_map(|i| i.code).collect::<Vec<_>>();
        let (first, other, again) = within_one_coding(|| (codes_of(&a), codes_of(&b), codes_of(&a)));
        assert_eq!(first, ["39.9500"]);
        assert!(other.contains(&"96.0400".to_string()) && !other.contains(&"39.9500".to_string()), "{other:?}");
        assert_eq!(again, first);
        assert!(LAST.with(|l| l.borrow().is_none()) && !IN_CODING.with(|c| c.get()));
    }

    /// The intubation timed in the operative note and the extubation (or the death) in the
    /// course: the hours are the record's, whatever section tells each end; a yearless date
    /// takes the record's year, and 12.06 heading a note is a date.
    #[test]
    fn ventilation_hours_across_sections() {
        let rec = |op: &str, course: &str| EhrRecord::new("t").with(Section::OperativeReport, op).with(Section::ClinicalCourse, course);
        let op = "(1) 12-03 09:00 BiPAP无创通气。\n(2) 12-03 19:50 意识障碍加重，行经口气管插管（7.5#），接有创呼吸机。";
        let c = codes(&rec(op, "12.03 08:40入院，予BiPAP。\n12.06 17:30 拔管，序贯BiPAP无创通气。"));
        assert!(c.contains(&"96.7100".to_string()) && !c.contains(&"96.7000".to_string()), "{c:?}");
        let c = codes(&rec(op, "12.03 08:40入院，予BiPAP。\n12.08 17:30 拔管，序贯BiPAP无创通气。"));
        assert!(c.contains(&"96.7200".to_string()), "{c:?}");
        // The year written in one section dates the other's yearless times.
        let c = codes(&rec("1、03-25 19:30 经口气管插管7.0#，顺利。", "2024-03-25 19:00 入科，抽搐发作。\n03-28 16:00 拔管。"));
        assert!(c.contains(&"96.7100".to_string()), "{c:?}");
        // Neither end timed: the duration stays unknown; a decimal is no date.
        let c = codes(&rec("经口气管插管，接呼吸机。", "血钾3.5 mmol/L。\n拔管后改鼻导管。"));
        assert!(c.contains(&"96.7000".to_string()), "{c:?}");
    }

    /// Ward and ICU procedures told in the notes: tracheostomy, bronchoscopy with lavage,
    /// lumbar puncture, paracentesis, transfusions by component; ventilation is one code by the
    /// longest duration told where it is told, not by an hour about something else.
    #[test]
    fn ward_procedures_and_ventilation_hours_are_coded_from_the_notes() {
        let c = codes(&EhrRecord::new("t").with(Section::ProgressNotes, "2小时后SpO2仍<88%，行经口气管插管，接呼吸机A/C模式。D5：予拔除气管插管。本次共呼吸机辅助呼吸102小时。床旁纤维支气管镜检查并行肺泡灌洗。"));
        assert!(c.contains(&"96.7200".to_string()) && !c.iter().any(|x| x == "96.7100" || x == "96.7000"), "{c:?}");
        assert!(c.contains(&"33.2400x002".to_string()) && c.contains(&"96.0400".to_string()), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "D8行床旁经皮扩张气管切开术，继续机械通气。行腰椎穿刺，脑脊液常规正常。予腹腔穿刺放腹水1000ml。输注悬浮红细胞2U、单采血小板1治疗量。"));
        for want in ["31.1x00x005", "03.3101", "54.9105", "99.0401", "99.0500", "96.7000"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }

    /// A hospital's own headings (有创操作记录, 抢救记录) are read like the operative report and
    /// the notes: the record is whatever keys the hospital gave it.
    #[test]
    fn procedures_under_a_hospitals_other_headings_are_coded() {
        let v = serde_json::json!({
            "病案标识": "H1", "主诉": "胸痛2小时", "入院诊断": "急性心肌梗死",
            "有创操作记录": "超声引导下右侧颈内静脉穿刺置管术，置入双腔中心静脉导管。",
            "抢救记录": "患者室颤，立即予胸外按压，200J非同步电除颤一次后恢复窦性心律。"
        });
        let rec = crate::record::io::record_from_json(&v, 1).unwrap();
        assert!(rec.extra.is_empty(), "{:?}", rec.extra.keys().collect::<Vec<_>>());
        let c = codes(&rec);
        for want in ["38.9302", "99.6200", "99.6000"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
    }

    /// Procedures on the wards and in the endoscopy unit that coders code: what ERCP did,
    /// the marrow sampled, a polyp removed (the clip closing its wound is no haemostasis), a
    /// wound debrided.
    #[test]
    fn ward_and_endoscopy_procedures_are_coded_by_what_was_done() {
        let scope = |s: Section, t: &str| codes(&EhrRecord::new("t").with(s, t));
        // The stones left for later do not take back the incision made.
        let c = scope(Section::OperativeReport, "进十二指肠镜，选择性胆管插管成功。仅行十二指肠乳头括约肌小切开（EST，约5mm），未行取石。沿导丝留置7Fr鼻胆引流管至左肝管。");
        assert!(c.contains(&"51.8503".to_string()) && c.contains(&"51.8600x002".to_string()), "{c:?}");
        let c = scope(Section::ClinicalCourse, "9月30日 经鼻胆管造影示结石仍在，予拔除鼻胆管。");
        assert!(c.is_empty(), "a cholangiogram through the drain and its removal: {c:?}");
        let c = scope(Section::ClinicalCourse, "于左侧髂后上棘行骨髓穿刺术+骨髓活检术，抽取骨髓液送涂片。术前输机采血小板1治疗量。");
        for want in ["41.3800x001", "41.3100", "99.0500"] {
            assert!(c.contains(&want.to_string()), "{want} missing from {c:?}");
        }
        assert!(scope(Section::ClinicalCourse, "建议骨髓穿刺，患者拒绝。").is_empty());
        let c = scope(Section::OperativeReport, "结肠镜：乙状结肠见一1.5cm亚蒂息肉，以圈套器完整电切，创面予钛夹2枚封闭。诊断：乙状结肠息肉（已行内镜下切除）。");
        assert_eq!(c, ["45.4201"], "the polypectomy, not a gastric clip haemostasis");
        let c = scope(Section::ClinicalCourse, "床旁局麻下行右足溃疡清创术：锐性切除坏死肌腱及皮下坏死组织。隔日换药。");
        assert_eq!(c, ["86.2200x011"]);
        assert!(scope(Section::ClinicalCourse, "骶尾部压疮换药每3天1次。").is_empty());
    }

    #[test]
    fn an_icus_terse_wordings_are_coded_as_the_conventions_say() {
        // A span of days is no duration; the sum after it is (98 h: 96.72).
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "有创机械通气自第1天14:00至第5天16:00拔管，共4天（98小时）。"));
        assert!(c.contains(&"96.7200".to_string()) && !c.contains(&"96.7100".to_string()), "{c:?}");
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "经口插管机械通气下行气管切开。有创机械通气自急诊插管至第12天脱机，累计约270小时。"));
        assert!(c.contains(&"96.0400".to_string()) && c.contains(&"96.7200".to_string()), "{c:?}");
        // A lavage told in the clause after the bronchoscopy.
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "床旁纤维支气管镜检查：右下叶见脓性分泌物，予吸净；于右下叶外基底段行支气管肺泡灌洗，回收48ml送培养。"));
        assert!(c.contains(&"33.2400x002".to_string()), "{c:?}");
        // Intermittent haemodialysis at the bedside is haemodialysis, not CRRT.
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "右颈内静脉穿刺置入临时双腔透析导管。床旁行间歇性血液透析（IHD）4小时。"));
        assert!(c.contains(&"39.9500".to_string()) && c.contains(&"38.9502".to_string()) && !c.contains(&"39.9500x007".to_string()), "{c:?}");
        // A plasma exchange's plasma is no transfusion.
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "行单膜血浆置换，置换量2500ml（新鲜冰冻血浆1500ml+5%白蛋白1000ml）。"));
        assert_eq!(c, vec!["39.9500x005"]);
        // Cardioversion of ventricular tachycardia is the other countershock; of AF atrial.
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "发作室速，予150J同步电复律转复。"));
        assert_eq!(c, vec!["99.6200"]);
        // (The TEE that found no thrombus first is a study of its own.)
        let c = codes(&EhrRecord::new("t").with(Section::ClinicalCourse, "持续性心房颤动，TEE未见血栓，予120J同步电复律转为窦律。"));
        assert_eq!(c, vec!["99.6100", "88.7202"]);
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "全麻，TEE引导下房间隔穿刺，送入MitraClip夹合器于A2/P2夹合，释放夹合器。"));
        assert_eq!(c, vec!["35.9700x003"], "a TEE that guides is part of the procedure");
        // Thrombus aspiration told the other way round.
        let c = codes(&EhrRecord::new("t").with(Section::OperativeReport, "Export导管抽吸数次，吸出大量红色血栓。"));
        assert!(c.contains(&"17.5500x003".to_string()), "{c:?}");
    }
}
