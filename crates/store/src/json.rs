//! The documents written and read for every command, encoded and decoded
//! without going through serde's generic machinery: outbox rows and
//! devices.
//!
//! Every command queued or acknowledged writes its outbox row (and an
//! acknowledged one reads and writes its device), and serde_json's encoder
//! spends most of that on its string escaper, which looks at one byte at a
//! time: about 5,000 instructions an outbox row, an eighth of enqueueing a
//! command, and 3,000 a device with one reported profile; decoding both
//! took 7,500 more. The text written here is exactly serde_json's (a
//! property test holds the two side by side): the same fields in the same
//! order, strings escaped the same way, and anything this module does not
//! write itself (an instant chrono writes in another form) handed to
//! serde_json whole. Reading takes that exact form only (no whitespace, no
//! escape in a string, every field in its place, instants in the fixed
//! form); any other text, including every malformed one, goes to
//! serde_json, so what is read, and every error, is serde_json's.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;

use crate::error::StoreError;
use crate::records::{CommandStatus, DeviceRecord, InstalledApp, OutboxEntry, ReportedProfile};

/// Appends `s` as a JSON string escaped as serde_json escapes it: the
/// quote, the backslash and the control characters below U+0020, nothing
/// else. Text holding none of them (every UUID, UDID and request type) is
/// copied as it is; the scan has no early exit, so the compiler can
/// vectorize it.
pub(crate) fn push_str(out: &mut String, s: &str) {
    let escaped = s.bytes().fold(false, |any, b| {
        any | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if escaped {
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.reserve(s.len() + 2);
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// `key` (the field's name with what comes before it), then `value`.
fn field(out: &mut String, key: &str, value: &str) {
    out.push_str(key);
    push_str(out, value);
}

/// `key`, then `value` or `null`.
fn nullable_field(out: &mut String, key: &str, value: Option<&str>) {
    out.push_str(key);
    match value {
        Some(value) => push_str(out, value),
        None => out.push_str("null"),
    }
}

/// A command's status as serde writes it (`rename_all = "kebab-case"`),
/// with its quotes.
fn status(s: CommandStatus) -> &'static str {
    match s {
        CommandStatus::Planned => "\"planned\"",
        CommandStatus::Sent => "\"sent\"",
        CommandStatus::Acknowledged => "\"acknowledged\"",
        CommandStatus::Error => "\"error\"",
        CommandStatus::NotNow => "\"not-now\"",
    }
}

/// An outbox row's document: `serde_json::to_string(e)`, written directly.
pub(crate) fn outbox_entry(e: &OutboxEntry) -> String {
    let strings = e.command_uuid.len()
        + e.udid.len()
        + e.request_type.len()
        + e.profile_uuid.len()
        + e.error_chain.as_ref().map_or(0, String::len);
    // Field names, punctuation, status, retries and two instants: about 200.
    let mut out = String::with_capacity(200 + strings);
    field(&mut out, "{\"command_uuid\":", &e.command_uuid);
    field(&mut out, ",\"udid\":", &e.udid);
    field(&mut out, ",\"request_type\":", &e.request_type);
    field(&mut out, ",\"profile_uuid\":", &e.profile_uuid);
    out.push_str(",\"status\":");
    out.push_str(status(e.status));
    nullable_field(&mut out, ",\"error_chain\":", e.error_chain.as_deref());
    // Writing to a String cannot fail.
    let _ = write!(out, ",\"retries\":{}", e.retries);
    out.push_str(",\"created_at\":");
    if !crate::instant::push_json(&mut out, &e.created_at) {
        return serde_json::to_string(e).unwrap_or_default();
    }
    out.push_str(",\"updated_at\":");
    if !crate::instant::push_json(&mut out, &e.updated_at) {
        return serde_json::to_string(e).unwrap_or_default();
    }
    out.push('}');
    out
}

/// A device's document: `serde_json::to_string(d)`, written directly.
pub(crate) fn device_record(d: &DeviceRecord) -> String {
    let mut out = String::with_capacity(
        64 + d.udid.len()
            + d.platform.len()
            + d.user.as_ref().map_or(0, String::len)
            + d.apps
                .iter()
                .map(|a| 32 + a.bundle_id.len() + a.version.len())
                .sum::<usize>()
            + d.reported.iter().map(|r| 70 + r.uuid.len()).sum::<usize>()
            + d.org_group.as_ref().map_or(0, |g| 16 + g.len())
            + d.enrollment_id.as_ref().map_or(0, |e| 20 + e.len()),
    );
    field(&mut out, "{\"udid\":", &d.udid);
    field(&mut out, ",\"platform\":", &d.platform);
    nullable_field(&mut out, ",\"user\":", d.user.as_deref());
    out.push_str(",\"apps\":[");
    for (i, a) in d.apps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, "{\"bundle_id\":", &a.bundle_id);
        field(&mut out, ",\"version\":", &a.version);
        out.push('}');
    }
    out.push_str("],\"reported\":[");
    for (i, r) in d.reported.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(&mut out, "{\"uuid\":", &r.uuid);
        out.push_str(",\"expires\":");
        if !crate::instant::push_json(&mut out, &r.expires) {
            return serde_json::to_string(d).unwrap_or_default();
        }
        out.push_str(if r.managed {
            ",\"managed\":true}"
        } else {
            ",\"managed\":false}"
        });
    }
    out.push(']');
    // Left out when absent (`skip_serializing_if`).
    if let Some(group) = &d.org_group {
        field(&mut out, ",\"org_group\":", group);
    }
    if let Some(id) = &d.enrollment_id {
        field(&mut out, ",\"enrollment_id\":", id);
    }
    out.push('}');
    out
}

/// An outbox row from its document, as `serde_json::from_str` reads it.
pub(crate) fn read_outbox_entry(doc: &str) -> Result<OutboxEntry, StoreError> {
    exact_outbox_entry(doc).map_or_else(|| by_serde(doc), Ok)
}

/// A device from its document, as `serde_json::from_str` reads it.
pub(crate) fn read_device_record(doc: &str) -> Result<DeviceRecord, StoreError> {
    exact_device_record(doc).map_or_else(|| by_serde(doc), Ok)
}

fn by_serde<T: DeserializeOwned>(doc: &str) -> Result<T, StoreError> {
    serde_json::from_str(doc).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The text left to read; every step takes exactly the form written above
/// or fails (`None`), leaving the document to serde_json.
struct Reader<'a> {
    rest: &'a str,
}

impl<'a> Reader<'a> {
    fn lit(&mut self, text: &str) -> Option<()> {
        self.rest = self.rest.strip_prefix(text)?;
        Some(())
    }

    /// A string with nothing escaped in it: a backslash (an escape) or a
    /// control character (which serde_json refuses) ends the exact form.
    fn string(&mut self) -> Option<&'a str> {
        let body = self.rest.strip_prefix('"')?;
        let end = body
            .bytes()
            .position(|b| b == b'"' || b == b'\\' || b < 0x20)?;
        let (text, tail) = body.split_at(end);
        self.rest = tail.strip_prefix('"')?;
        Some(text)
    }

    fn owned(&mut self) -> Option<String> {
        self.string().map(str::to_owned)
    }

    /// `key` (the field's name with what comes before it), then a string.
    fn text_after(&mut self, key: &str) -> Option<String> {
        self.lit(key)?;
        self.owned()
    }

    fn nullable(&mut self) -> Option<Option<String>> {
        if self.lit("null").is_some() {
            return Some(None);
        }
        self.owned().map(Some)
    }

    /// An integer as serde_json writes one: `0`, or an optional minus and
    /// digits with no leading zero, in range.
    fn integer(&mut self) -> Option<i64> {
        let b = self.rest.as_bytes();
        let sign = usize::from(b.first() == Some(&b'-'));
        let digits = b
            .get(sign..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let text = self.rest.get(..sign + digits)?;
        let first = b.get(sign)?;
        if digits == 0 || (*first == b'0' && (digits > 1 || sign == 1)) {
            return None;
        }
        let v = text.parse().ok()?;
        self.rest = self.rest.get(sign + digits..)?;
        Some(v)
    }

    fn instant(&mut self) -> Option<DateTime<Utc>> {
        crate::instant::read_fixed(self.string()?)
    }

    fn boolean(&mut self) -> Option<bool> {
        if self.lit("true").is_some() {
            Some(true)
        } else {
            self.lit("false").map(|()| false)
        }
    }

    /// `[item, ...]`, each item read by `item`.
    fn list<T>(&mut self, mut item: impl FnMut(&mut Self) -> Option<T>) -> Option<Vec<T>> {
        self.lit("[")?;
        let mut out = Vec::new();
        if self.lit("]").is_some() {
            return Some(out);
        }
        loop {
            out.push(item(self)?);
            if self.lit("]").is_some() {
                return Some(out);
            }
            self.lit(",")?;
        }
    }

    /// The closing brace, and nothing after it.
    fn end(&mut self) -> Option<()> {
        self.lit("}")?;
        self.rest.is_empty().then_some(())
    }
}

/// An outbox row's document in exactly the form [`outbox_entry`] writes.
fn exact_outbox_entry(doc: &str) -> Option<OutboxEntry> {
    let mut r = Reader { rest: doc };
    let command_uuid = r.text_after("{\"command_uuid\":")?;
    let udid = r.text_after(",\"udid\":")?;
    let request_type = r.text_after(",\"request_type\":")?;
    let profile_uuid = r.text_after(",\"profile_uuid\":")?;
    r.lit(",\"status\":")?;
    let status = match r.string()? {
        "planned" => CommandStatus::Planned,
        "sent" => CommandStatus::Sent,
        "acknowledged" => CommandStatus::Acknowledged,
        "error" => CommandStatus::Error,
        "not-now" => CommandStatus::NotNow,
        _ => return None,
    };
    r.lit(",\"error_chain\":")?;
    let error_chain = r.nullable()?;
    r.lit(",\"retries\":")?;
    let retries = r.integer()?;
    r.lit(",\"created_at\":")?;
    let created_at = r.instant()?;
    r.lit(",\"updated_at\":")?;
    let updated_at = r.instant()?;
    r.end()?;
    Some(OutboxEntry {
        command_uuid,
        udid,
        request_type,
        profile_uuid,
        status,
        error_chain,
        retries,
        created_at,
        updated_at,
    })
}

/// A device's document in exactly the form [`device_record`] writes.
fn exact_device_record(doc: &str) -> Option<DeviceRecord> {
    let mut r = Reader { rest: doc };
    let udid = r.text_after("{\"udid\":")?;
    let platform = r.text_after(",\"platform\":")?;
    r.lit(",\"user\":")?;
    let user = r.nullable()?;
    r.lit(",\"apps\":")?;
    let apps = r.list(|r| {
        let bundle_id = r.text_after("{\"bundle_id\":")?;
        let version = r.text_after(",\"version\":")?;
        r.lit("}")?;
        Some(InstalledApp { bundle_id, version })
    })?;
    r.lit(",\"reported\":")?;
    let reported = r.list(|r| {
        let uuid = r.text_after("{\"uuid\":")?;
        r.lit(",\"expires\":")?;
        let expires = r.instant()?;
        r.lit(",\"managed\":")?;
        let managed = r.boolean()?;
        r.lit("}")?;
        Some(ReportedProfile {
            uuid,
            expires,
            managed,
        })
    })?;
    let org_group = match r.lit(",\"org_group\":") {
        Some(()) => Some(r.owned()?),
        None => None,
    };
    let enrollment_id = match r.lit(",\"enrollment_id\":") {
        Some(()) => Some(r.owned()?),
        None => None,
    };
    r.end()?;
    Some(DeviceRecord {
        udid,
        platform,
        user,
        apps,
        reported,
        org_group,
        enrollment_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instant::tests::instant;
    use proptest::prelude::*;

    /// Text with what JSON escapes (quotes, backslashes, control
    /// characters) among any other characters, and plain identifiers.
    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            // Mostly plain, so that whole documents reach the exact reader.
            3 => "[A-Z0-9-]{0,40}",
            1 => prop::collection::vec(
                prop_oneof![
                    any::<char>(),
                    Just('"'),
                    Just('\\'),
                    Just('\u{1}'),
                    Just('\n'),
                    Just('\u{1f}'),
                    Just('\u{7f}'),
                    Just('\u{2028}'),
                    prop::char::range('a', 'z'),
                ],
                0..40,
            )
            .prop_map(String::from_iter),
        ]
    }

    /// Mostly instants in the fixed form (years 1970-9999), the exact
    /// reader's; the others across chrono's whole range.
    fn any_instant() -> impl Strategy<Value = DateTime<Utc>> {
        prop_oneof![
            3 => (0i64..=253_402_300_799, prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000), 0u32..1_000_000_000])
                .prop_filter_map("representable", |(secs, nanos)| {
                    DateTime::from_timestamp(secs, nanos)
                }),
            1 => instant(),
        ]
    }

    fn entry() -> impl Strategy<Value = OutboxEntry> {
        (
            (text(), text(), text(), text()),
            prop::sample::select(vec![
                CommandStatus::Planned,
                CommandStatus::Sent,
                CommandStatus::Acknowledged,
                CommandStatus::Error,
                CommandStatus::NotNow,
            ]),
            prop::option::of(text()),
            any::<i64>(),
            (any_instant(), any_instant()),
        )
            .prop_map(
                |(
                    (command_uuid, udid, request_type, profile_uuid),
                    status,
                    error_chain,
                    retries,
                    (created_at, updated_at),
                )| OutboxEntry {
                    command_uuid,
                    udid,
                    request_type,
                    profile_uuid,
                    status,
                    error_chain,
                    retries,
                    created_at,
                    updated_at,
                },
            )
    }

    fn device() -> impl Strategy<Value = DeviceRecord> {
        use crate::records::{InstalledApp, ReportedProfile};
        (
            (text(), text(), prop::option::of(text())),
            prop::collection::vec(
                (text(), text())
                    .prop_map(|(bundle_id, version)| InstalledApp { bundle_id, version }),
                0..4,
            ),
            prop::collection::vec(
                (text(), any_instant(), any::<bool>()).prop_map(|(uuid, expires, managed)| {
                    ReportedProfile {
                        uuid,
                        expires,
                        managed,
                    }
                }),
                0..4,
            ),
            (prop::option::of(text()), prop::option::of(text())),
        )
            .prop_map(
                |((udid, platform, user), apps, reported, (org_group, enrollment_id))| {
                    DeviceRecord {
                        udid,
                        platform,
                        user,
                        apps,
                        reported,
                        org_group,
                        enrollment_id,
                    }
                },
            )
    }

    /// `text` with one place changed: a character replaced, text inserted,
    /// or the rest cut off.
    fn edited(mut text: String, at: usize, with: &str, kind: u8) -> String {
        let at = at % (text.len() + 1);
        if !text.is_char_boundary(at) {
            return text;
        }
        match kind % 3 {
            0 => {
                let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                text.replace_range(at..end, with);
            }
            1 => text.insert_str(at, with),
            _ => text.truncate(at),
        }
        text
    }

    fn edit() -> impl Strategy<Value = (usize, &'static str, u8)> {
        (
            any::<usize>(),
            prop::sample::select(vec![
                "",
                " ",
                "\"",
                "\\",
                "0",
                "00",
                "-",
                "-0",
                "1",
                ",",
                "}",
                "{",
                "[",
                "]",
                ":",
                "null",
                "true",
                "\"x\"",
                "\u{1}",
                "é",
                "99999999999999999999",
                "\"planned\"",
                ",\"x\":1",
                "Z",
                "T",
                ".5",
            ]),
            any::<u8>(),
        )
    }

    /// A row as the bench and a plan make them, and a device with every
    /// field: read by the exact path, not handed to serde_json.
    #[test]
    fn documents_as_written_are_read_without_serde() {
        let at = "2026-11-22T00:00:00Z".parse().unwrap();
        let e = OutboxEntry {
            command_uuid: "019AA8D0-1C00-7E2B-8F3A-5D1C9B0E4A77".into(),
            udid: "DEV-0000001".into(),
            request_type: "InstallProvisioningProfile".into(),
            profile_uuid: "ACAC0000-0000-4000-8000-000000000001".into(),
            status: CommandStatus::NotNow,
            error_chain: Some("MCMDMErrorDomain 12021: busy".into()),
            retries: -3,
            created_at: at,
            updated_at: at,
        };
        assert_eq!(exact_outbox_entry(&outbox_entry(&e)), Some(e));
        let d = DeviceRecord {
            udid: "DEV-0000001".into(),
            platform: "iOS".into(),
            user: Some("alice".into()),
            apps: vec![
                InstalledApp {
                    bundle_id: "com.example.app".into(),
                    version: "1.2".into(),
                };
                2
            ],
            reported: vec![ReportedProfile {
                uuid: "ACAC0000-0000-4000-8000-000000000001".into(),
                expires: at,
                managed: false,
            }],
            org_group: Some("Global/EMEA".into()),
            enrollment_id: Some("ENR-1".into()),
        };
        assert_eq!(exact_device_record(&device_record(&d)), Some(d));
    }

    /// The places where a lax exact reader would part from serde_json,
    /// each tried in a document that is otherwise in the exact form.
    #[test]
    fn near_misses_read_as_serde_json_reads_them() {
        let base = outbox_entry(&OutboxEntry {
            command_uuid: "C".into(),
            udid: "D".into(),
            request_type: "InstallProvisioningProfile".into(),
            profile_uuid: "P".into(),
            status: CommandStatus::Planned,
            error_chain: None,
            retries: 7,
            created_at: "2026-11-22T00:00:00Z".parse().unwrap(),
            updated_at: "2026-11-22T00:00:00Z".parse().unwrap(),
        });
        let mut texts = Vec::new();
        for retries in [
            "0",
            "00",
            "01",
            "-0",
            "-01",
            "-",
            "1e2",
            "1.0",
            "+1",
            " 1",
            "1 ",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "-9223372036854775809",
            "null",
            "\"7\"",
        ] {
            texts.push(base.replace("\"retries\":7", &format!("\"retries\":{retries}")));
        }
        for at in [
            "2026-11-22T00:00:00+00:00",
            "2016-12-31T23:59:60Z",
            "2026-11-22 00:00:00Z",
            "2026-11-22T00:00:00.5Z",
            "2026-11-22T00:00:00.000Z",
            "2026-02-30T00:00:00Z",
            "2026-11-22",
            "",
        ] {
            texts.push(base.replacen("2026-11-22T00:00:00Z", at, 1));
        }
        for (from, to) in [
            ("\"D\"", "\"D\\u0041\""),
            ("\"D\"", "\"D\\\"\""),
            ("\"D\"", "\"D\u{1}\""),
            ("\"planned\"", "\"Planned\""),
            ("\"planned\"", "\"not_now\""),
            ("\"error_chain\":null", "\"error_chain\":\"e\""),
            ("\"error_chain\":null,", ""),
            ("{", "{ "),
            ("{", "{\"x\":1,"),
            ("}", ",\"udid\":\"E\"}"),
            ("}", "} "),
            ("}", "}}"),
            (",\"udid\"", " ,\"udid\""),
        ] {
            texts.push(base.replacen(from, to, 1));
        }
        for text in &texts {
            let theirs = serde_json::from_str::<OutboxEntry>(text).ok();
            assert_eq!(read_outbox_entry(text).ok(), theirs, "{text}");
        }
        assert_eq!(exact_outbox_entry(&base).map(|e| e.retries), Some(7));
    }

    /// `text` (what [`outbox_entry`] or [`device_record`] wrote for
    /// `value`) is read back to `value`, and once edited, to what
    /// serde_json makes of it.
    fn reads_as_serde_json<T>(
        text: String,
        value: T,
        read: fn(&str) -> Result<T, StoreError>,
        (at, with, kind): (usize, &str, u8),
    ) -> Result<(), TestCaseError>
    where
        T: serde::Serialize + DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        prop_assert_eq!(&text, &serde_json::to_string(&value).unwrap());
        prop_assert_eq!(read(&text).unwrap(), value);
        let text = edited(text, at, with, kind);
        let theirs = serde_json::from_str::<T>(&text).ok();
        prop_assert_eq!(read(&text).ok(), theirs, "{}", text);
        Ok(())
    }

    proptest! {
        // Most edits land where both readers refuse or both agree; many
        // cases reach the few places (an integer's first digit, the end of
        // the text) where a lax exact reader would differ.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn outbox_rows_are_written_and_read_as_serde_json_does(e in entry(), edit in edit()) {
            reads_as_serde_json(outbox_entry(&e), e, read_outbox_entry, edit)?;
        }

        #[test]
        fn devices_are_written_and_read_as_serde_json_does(d in device(), edit in edit()) {
            reads_as_serde_json(device_record(&d), d, read_device_record, edit)?;
        }

        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(s in text()) {
            let mut ours = String::new();
            push_str(&mut ours, &s);
            prop_assert_eq!(ours, serde_json::to_string(&s).unwrap());
        }
    }
}
