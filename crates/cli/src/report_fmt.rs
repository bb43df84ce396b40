//! Verdicts for CI: JUnit XML (one test case per app, a failure per error
//! finding) and SARIF 2.1.0 (one result per finding, the code as rule id).

use provkit_codesign::Report;
use provkit_profile::Severity;
use serde_json::json;

/// One verified input: its path and its report, or why it is not an app.
pub(crate) type Verdict = (String, Result<Report, String>);

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// JUnit XML: a test case per input; errors are failures, unreadable
/// inputs are errors, warnings go to system-out.
pub(crate) fn junit(verdicts: &[Verdict]) -> String {
    let failures = verdicts
        .iter()
        .filter(|(_, r)| matches!(r, Ok(rep) if !rep.valid))
        .count();
    let errors = verdicts.iter().filter(|(_, r)| r.is_err()).count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"provkit ipa verify\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\">\n",
        verdicts.len()
    );
    for (path, r) in verdicts {
        s.push_str(&format!(
            "  <testcase classname=\"provkit.ipa\" name=\"{}\">\n",
            xml(path)
        ));
        match r {
            Err(e) => s.push_str(&format!(
                "    <error type=\"not-an-app\" message=\"{}\"/>\n",
                xml(e)
            )),
            Ok(rep) => {
                let mut out = String::new();
                for f in &rep.findings {
                    let place = format!("{} {}", f.bundle, f.path.as_deref().unwrap_or(""));
                    let text = format!(
                        "{}: {} ({}) fix: {}",
                        f.code,
                        f.message,
                        place.trim(),
                        f.fix
                    );
                    if f.severity == Severity::Error {
                        s.push_str(&format!(
                            "    <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                            f.code,
                            xml(&f.message),
                            xml(&text)
                        ));
                    } else {
                        out.push_str(&format!("warning {text}\n"));
                    }
                }
                if !out.is_empty() {
                    s.push_str(&format!("    <system-out>{}</system-out>\n", xml(&out)));
                }
            }
        }
        s.push_str("  </testcase>\n");
    }
    s.push_str("</testsuite>\n</testsuites>\n");
    s
}

/// SARIF 2.1.0: a result per finding (rule id = the finding code, level
/// error or warning), located at the app and the file inside it.
pub(crate) fn sarif(verdicts: &[Verdict]) -> serde_json::Value {
    let mut rules = std::collections::BTreeMap::new();
    let mut results = Vec::new();
    for (path, r) in verdicts {
        match r {
            Err(e) => {
                rules.entry("not-an-app".to_owned()).or_insert_with(|| {
                    json!({"id": "not-an-app", "shortDescription": {"text": "not readable as an app"}})
                });
                results.push(json!({
                    "ruleId": "not-an-app", "level": "error", "message": {"text": e},
                    "locations": [{"physicalLocation": {"artifactLocation": {"uri": path}}}]
                }));
            }
            Ok(rep) => {
                for f in &rep.findings {
                    rules.entry(f.code.to_string()).or_insert_with(|| {
                        json!({
                            "id": f.code.as_str(),
                            "shortDescription": {"text": f.class.unwrap_or(f.code.as_str())},
                            "help": {"text": f.fix}
                        })
                    });
                    let inner = match &f.path {
                        Some(p) => format!("{}/{p}", f.bundle),
                        None => f.bundle.clone(),
                    };
                    results.push(json!({
                        "ruleId": f.code.as_str(),
                        "level": f.severity.as_str(),
                        "message": {"text": format!("{} Fix: {}", f.message, f.fix)},
                        "locations": [{
                            "physicalLocation": {"artifactLocation": {"uri": path}},
                            "logicalLocations": [{"fullyQualifiedName": inner, "kind": "resource"}]
                        }]
                    }));
                }
            }
        }
    }
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "provkit",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.into_values().collect::<Vec<_>>()
            }},
            "results": results
        }]
    })
}
