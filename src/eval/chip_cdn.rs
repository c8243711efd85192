//! CHIP-CDN (diagnosis normalization, CBLUE): one mention and its gold standard terms per
//! item, `##`-joined in the file.

/// One CHIP-CDN item: the mention and its gold standard terms.
pub struct CdnItem {
    pub text: String,
    pub gold: Vec<String>,
}

pub fn read(path: &std::path::Path) -> Result<Vec<CdnItem>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let items: Vec<serde_json::Value> = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(items
        .iter()
        .map(|it| CdnItem {
            text: it["text"].as_str().unwrap_or("").to_owned(),
            gold: it["normalized_result"]
                .as_str()
                .unwrap_or("")
                .split("##")
                .map(|g| g.trim().trim_matches('"').to_owned())
                .filter(|g| !g.is_empty())
                .collect(),
        })
        .collect())
}
