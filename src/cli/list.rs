use anyhow::{Result, bail};

use super::Global;
use crate::container::{Container, state};

#[derive(clap::Args)]
pub struct Args {
    /// Output format: table or json
    #[arg(short, long, default_value = "table")]
    format: String,
    /// Print only the container ids
    #[arg(short, long)]
    quiet: bool,
}

pub fn run(g: &Global, a: Args) -> Result<i32> {
    if a.format != "table" && a.format != "json" {
        bail!("--format: {:?} is not one of table, json", a.format);
    }
    let mut out = vec![];
    for id in state::list_ids(&g.root)? {
        // A directory without a readable state (a create that crashed very early, or a
        // corrupt file) is still listed, so that it can be seen and deleted.
        match Container::load(&g.root, &id) {
            Ok(c) => out.push(c.oci_state(c.status())),
            Err(_) => out.push(serde_json::json!({"id": id, "pid": 0, "status": "stopped", "bundle": "", "created": "", "owner": ""})),
        }
    }
    if a.quiet {
        for s in &out {
            println!("{}", s["id"].as_str().unwrap_or_default());
        }
    } else if a.format == "json" {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        let mut rows = vec![[
            "ID".to_string(),
            "PID".into(),
            "STATUS".into(),
            "BUNDLE".into(),
            "CREATED".into(),
            "OWNER".into(),
        ]];
        for s in &out {
            let f = |k: &str| match &s[k] {
                serde_json::Value::String(v) => v.clone(),
                v => v.to_string(),
            };
            rows.push([
                f("id"),
                f("pid"),
                f("status"),
                f("bundle"),
                f("created"),
                f("owner"),
            ]);
        }
        let mut w = [0usize; 6];
        for r in &rows {
            for (i, c) in r.iter().enumerate() {
                w[i] = w[i].max(c.len());
            }
        }
        let mut text = String::new();
        for r in &rows {
            let line: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    if i == 5 {
                        c.clone()
                    } else {
                        format!("{c:<width$}", width = w[i])
                    }
                })
                .collect();
            text.push_str(line.join("   ").trim_end());
            text.push('\n');
        }
        print!("{text}");
    }
    Ok(0)
}
