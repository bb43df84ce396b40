//! The inventory as CSV: one fact per row, for spreadsheets and exports.
//!
//! The first column names the record; the others are its values:
//!
//! ```csv
//! record,a,b,c
//! user,alice,alice@example.com,
//! device,00008110-000A1B2C3D4E5F60,alice,iOS
//! enrollment,00008110-000A1B2C3D4E5F60,8A2F0C51-ENROLLMENT,
//! app,00008110-000A1B2C3D4E5F60,com.example.app,1.0
//! reported,00008110-000A1B2C3D4E5F60,5D1AB0E1-7C3B-4F1E-9A55-0123456789AB,2027-01-15T00:00:00Z
//! group,Sales,user,
//! member,Sales,alice,
//! subgroup,Sales,Sales EU,
//! ```
//!
//! `user` takes the name and, optionally, the user's email address;
//! `device` takes the UDID, the primary user (may be empty) and the platform
//! (default iOS); `enrollment` (the id the MDM server knows the device by,
//! when not its UDID), `app` and `reported` refer to a device listed earlier;
//! `group` takes the name and `user` or `device`; `member` and `subgroup`
//! refer to a group listed earlier. A header row starting with `record` is
//! skipped. Fields may be quoted (`"a, b"`, `""` for a quote).

use crate::records::{DeviceRecord, GroupRecord, InstalledApp, Inventory, ReportedProfile};

/// Splits one CSV line into fields (RFC 4180 quoting).
fn fields(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cur.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cur.push(c),
            (false, '"') if cur.is_empty() && !was_quoted => {
                quoted = true;
                was_quoted = true;
            }
            (false, ',') => {
                out.push(std::mem::take(&mut cur));
                was_quoted = false;
            }
            (false, c) => cur.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// One CSV field, quoted when it holds a comma or a quote.
fn field(s: &str) -> Result<String, String> {
    if s.contains(['\n', '\r']) {
        return Err(format!(
            "{s:?} holds a line break, which the CSV form cannot carry (export JSON)"
        ));
    }
    Ok(
        if s.contains([',', '"']) || s.starts_with(' ') || s.ends_with(' ') {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        },
    )
}

impl Inventory {
    /// Writes the CSV form, which [`Inventory::from_csv`] reads back to
    /// the same inventory.
    ///
    /// # Errors
    /// A name with a line break, which CSV rows cannot carry, or a reported
    /// profile that is not MDM-managed (the form has no column for it).
    pub fn to_csv(&self) -> Result<String, String> {
        let mut out = String::from("record,a,b,c\n");
        let mut row = |cells: [&str; 4]| -> Result<(), String> {
            let cells: Vec<String> = cells.iter().map(|c| field(c)).collect::<Result<_, _>>()?;
            out.push_str(&cells.join(","));
            out.push('\n');
            Ok(())
        };
        for u in &self.users {
            let email = self.emails.get(u).map_or("", String::as_str);
            row(["user", u, email, ""])?;
        }
        for d in &self.devices {
            row([
                "device",
                &d.udid,
                d.user.as_deref().unwrap_or(""),
                &d.platform,
            ])?;
            if let Some(e) = &d.enrollment_id {
                row(["enrollment", &d.udid, e, ""])?;
            }
            for a in &d.apps {
                row(["app", &d.udid, &a.bundle_id, &a.version])?;
            }
            for r in &d.reported {
                if !r.managed {
                    return Err(format!(
                        "device {}: reported profile {} is not managed, which the CSV form cannot say (export JSON)",
                        d.udid, r.uuid
                    ));
                }
                // Every digit of the fraction a device reported is kept.
                let expires = r
                    .expires
                    .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
                row(["reported", &d.udid, &r.uuid, &expires])?;
            }
        }
        let kind = |k: provkit_policy::GroupKind| match k {
            provkit_policy::GroupKind::User => "user",
            provkit_policy::GroupKind::Device => "device",
        };
        for g in &self.groups {
            row(["group", &g.name, kind(g.kind), ""])?;
        }
        // Members and subgroups after every group, so a subgroup is defined first.
        for g in &self.groups {
            for m in &g.members {
                row(["member", &g.name, m, ""])?;
            }
            for sub in &g.subgroups {
                row(["subgroup", &g.name, sub, ""])?;
            }
        }
        Ok(out)
    }

    /// Reads the CSV form (see the module documentation).
    ///
    /// # Errors
    /// A sentence naming the line and what is wrong with it.
    pub fn from_csv(text: &str) -> Result<Inventory, String> {
        let mut inv = Inventory::default();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() {
                continue;
            }
            let f = fields(line).map_err(|e| format!("line {line_no}: {e}"))?;
            let get = |i: usize| f.get(i).map_or("", |s| s.trim());
            let need = |i: usize, what: &str| {
                let v = get(i);
                if v.is_empty() {
                    Err(format!("line {line_no}: {} needs {what}", get(0)))
                } else {
                    Ok(v.to_owned())
                }
            };
            let device = |inv: &mut Inventory, udid: &str| {
                inv.devices
                    .iter()
                    .position(|d| d.udid == udid)
                    .ok_or_else(|| format!("line {line_no}: device {udid} is not listed above"))
            };
            let group = |inv: &mut Inventory, name: &str| {
                inv.groups
                    .iter()
                    .position(|g| g.name == name)
                    .ok_or_else(|| format!("line {line_no}: group {name} is not listed above"))
            };
            match get(0) {
                "record" if n == 0 => {}
                "user" => {
                    let name = need(1, "a name")?;
                    if !get(2).is_empty() {
                        inv.emails.insert(name.clone(), get(2).to_owned());
                    }
                    inv.users.push(name);
                }
                "device" => inv.devices.push(DeviceRecord {
                    udid: need(1, "a UDID")?,
                    platform: if get(3).is_empty() {
                        "iOS".into()
                    } else {
                        get(3).into()
                    },
                    user: (!get(2).is_empty()).then(|| get(2).to_owned()),
                    apps: Vec::new(),
                    reported: Vec::new(),
                    org_group: None,
                    enrollment_id: None,
                }),
                "enrollment" => {
                    let i = device(&mut inv, &need(1, "a UDID")?)?;
                    inv.devices[i].enrollment_id = Some(need(2, "an enrollment id")?);
                }
                "app" => {
                    let i = device(&mut inv, &need(1, "a UDID")?)?;
                    let app = InstalledApp {
                        bundle_id: need(2, "a bundle id")?,
                        version: need(3, "a version")?,
                    };
                    inv.devices[i].apps.push(app);
                }
                "reported" => {
                    let i = device(&mut inv, &need(1, "a UDID")?)?;
                    let text = need(3, "an expiry")?;
                    let expires = crate::instant::parse_lenient(&text).ok_or_else(|| {
                        format!(
                            "line {line_no}: expiry {text:?} is not an RFC 3339 instant or a date"
                        )
                    })?;
                    inv.devices[i].reported.push(ReportedProfile {
                        uuid: need(2, "a profile UUID")?,
                        expires,
                        managed: true,
                    });
                }
                "group" => {
                    let kind = match need(2, "a kind")?.as_str() {
                        "user" => provkit_policy::GroupKind::User,
                        "device" => provkit_policy::GroupKind::Device,
                        k => {
                            return Err(format!(
                                "line {line_no}: group kind {k:?} is neither user nor device"
                            ));
                        }
                    };
                    inv.groups.push(GroupRecord {
                        name: need(1, "a name")?,
                        kind,
                        members: Vec::new(),
                        subgroups: Vec::new(),
                        org_group: None,
                    });
                }
                "member" => {
                    let i = group(&mut inv, &need(1, "a group")?)?;
                    let m = need(2, "a member")?;
                    inv.groups[i].members.push(m);
                }
                "subgroup" => {
                    let i = group(&mut inv, &need(1, "a group")?)?;
                    let s = need(2, "a subgroup")?;
                    inv.groups[i].subgroups.push(s);
                }
                other => return Err(format!("line {line_no}: unknown record {other:?}")),
            }
        }
        Ok(inv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_record() {
        let text = "record,a,b,c\nuser,alice,alice@example.com,\nuser,\"bob, jr\",,\ndevice,U1,alice,\napp,U1,com.example.app,1.0\n\
                    reported,U1,P1,2027-01-15T00:00:00Z\ngroup,Sales,user,\nmember,Sales,alice,\nsubgroup,Sales,Sales EU,\n\
                    group,Sales EU,user,\n";
        let inv = Inventory::from_csv(text).unwrap();
        assert_eq!(inv.users, ["alice", "bob, jr"]);
        assert_eq!(inv.emails.len(), 1);
        assert_eq!(inv.emails["alice"], "alice@example.com");
        assert_eq!(inv.devices[0].platform, "iOS");
        assert_eq!(inv.devices[0].user.as_deref(), Some("alice"));
        assert_eq!(inv.devices[0].apps[0].version, "1.0");
        assert_eq!(inv.devices[0].reported[0].uuid, "P1");
        assert_eq!(inv.groups[0].members, ["alice"]);
        assert_eq!(inv.groups[0].subgroups, ["Sales EU"]);
    }

    /// The CSV export wrote a reported expiry whole seconds only, and as
    /// chrono writes years before 0 or after 9999 (a device's binary plist
    /// can report them), which the import refused as not RFC 3339: an
    /// exported inventory did not import again, or lost the fraction.
    #[test]
    fn an_exported_reported_expiry_did_not_import_again() {
        let mut inv = Inventory::default();
        let mut dev: DeviceRecord =
            serde_json::from_str(r#"{"udid":"U1","platform":"iOS"}"#).unwrap();
        for (i, t) in [
            "-0001-12-31T00:00:00Z",
            "+10000-01-01T00:00:00Z",
            "2027-01-15T10:20:30.123456789Z",
            "2027-01-15T00:00:00Z",
        ]
        .into_iter()
        .enumerate()
        {
            dev.reported.push(ReportedProfile {
                uuid: format!("P{i}"),
                expires: t.parse().unwrap(),
                managed: true,
            });
        }
        inv.devices.push(dev);
        let back = Inventory::from_csv(&inv.to_csv().unwrap()).unwrap();
        assert_eq!(back.devices[0].reported, inv.devices[0].reported);
    }

    #[test]
    fn errors_name_the_line() {
        let e = Inventory::from_csv("user,alice\napp,U9,x,1\n").unwrap_err();
        assert!(e.starts_with("line 2:") && e.contains("U9"), "{e}");
        assert!(
            Inventory::from_csv("group,G,team,\n")
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            Inventory::from_csv("user,\"open\n")
                .unwrap_err()
                .contains("quote")
        );
        assert!(
            Inventory::from_csv("thing,a\n")
                .unwrap_err()
                .contains("unknown record")
        );
    }
}
