#!/usr/bin/env python3
"""Writes the fuzzers' hand-made seeds: the deep nestings and escapes that a
fuzzer starting from 4 KB inputs never reaches (a 2,000-level binary plist,
deep XML and DER plists, nested BER octet strings, a symlink leaving the
bundle through the archive root, an app whose Info.plist is deep), and
the store's outbox rows and device documents as it writes them.

With the shared corpus named, it also copies real inputs, each cut to the
fuzzers' 64 KiB input size: profiles, certificates, small IPAs, and from
every IPA its executables' first 64 KiB, its Info.plists and CodeResources.

Usage: seeds.py OUT_DIR [CORPUS]   (writes OUT_DIR/<target>/<name>)
"""
import io
import os
import struct
import sys
import zipfile


def bplist_nested(levels, fan_out=1):
    """`levels` arrays, each holding the next `fan_out` times."""
    body = b"bplist00"
    offsets = []
    for k in range(levels):
        offsets.append(len(body))
        if k + 1 == levels:
            body += b"\xa0"
        else:
            body += bytes([0xA0 | fan_out]) + struct.pack(">H", k + 1) * fan_out
    table = len(body)
    body += b"".join(struct.pack(">I", o) for o in offsets)
    body += b"\0" * 6 + bytes([4, 2]) + struct.pack(">QQQ", levels, 0, table)
    return body


def xml_nested(levels):
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<plist version="1.0">'
        + b"<array>" * levels
        + b"</array>" * levels
        + b"</plist>"
    )


def der(tag, content):
    n = len(content)
    if n < 0x80:
        head = bytes([tag, n])
    elif n < 0x100:
        head = bytes([tag, 0x81, n])
    elif n < 0x10000:
        head = bytes([tag, 0x82]) + struct.pack(">H", n)
    else:
        head = bytes([tag, 0x83]) + n.to_bytes(3, "big")
    return head + content


def der_plist_nested(levels):
    v = der(0x30, b"")
    for _ in range(levels):
        v = der(0x30, v)
    return v


def indefinite(tag, content):
    return bytes([tag, 0x80]) + content + b"\0\0"


def cms_with_content(octets):
    oid = lambda body: der(0x06, body)
    signed_data = bytes.fromhex("2a864886f70d010702")
    data = bytes.fromhex("2a864886f70d010701")
    encap = indefinite(0x30, oid(data) + indefinite(0xA0, octets))
    sd = indefinite(0x30, der(0x02, b"\x01") + der(0x31, b"") + encap + der(0x31, b""))
    return indefinite(0x30, oid(signed_data) + indefinite(0xA0, sd))


def ber_octets_nested(levels):
    return b"\x24\x80" * levels + b"\x04\x01\xaa" + b"\0\0" * levels


def info_plist(executable="App"):
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><plist version="1.0"><dict>'
        b"<key>CFBundleIdentifier</key><string>com.example.seed</string>"
        b"<key>CFBundleExecutable</key><string>" + executable.encode() + b"</string>"
        b"</dict></plist>"
    )


def ipa(entries, links=()):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        for name, data in entries:
            z.writestr(name, data)
        for name, target in links:
            info = zipfile.ZipInfo(name)
            info.create_system = 3
            info.external_attr = (0o120777 << 16)
            z.writestr(info, target)
    return out.getvalue()


MAX_LEN = 64 << 10


def from_corpus(corpus):
    """Real inputs by target, from the shared corpus."""
    seeds = {t: {} for t in ["parse_profile", "parse_cms", "parse_certificate", "parse_macho",
                             "parse_plist", "parse_code_resources", "read_ipa",
                             "check_macho_by_parts"]}
    for sub in ["profiles", "odd"]:
        d = os.path.join(corpus, sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            data = open(os.path.join(d, name), "rb").read()
            if len(data) <= MAX_LEN:
                seeds["parse_profile"][name] = data
                seeds["parse_cms"][name] = data
    for sub in ["apple-pki", "from-profiles", "from-codesign"]:
        d = os.path.join(corpus, "certs", sub)
        for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
            seeds["parse_certificate"][sub + "-" + name] = open(os.path.join(d, name), "rb").read()
    d = os.path.join(corpus, "ipas")
    for name in sorted(os.listdir(d)) if os.path.isdir(d) else []:
        path = os.path.join(d, name)
        if os.path.getsize(path) <= MAX_LEN:
            seeds["read_ipa"][name] = open(path, "rb").read()
        try:
            z = zipfile.ZipFile(path)
        except zipfile.BadZipFile:
            continue
        for i, info in enumerate(z.infolist()):
            n = info.filename
            key = f"{name}-{i}"
            if n.endswith("/Info.plist") and info.file_size <= MAX_LEN:
                seeds["parse_plist"][key] = z.read(info)
            elif n.endswith("_CodeSignature/CodeResources") and info.file_size <= MAX_LEN:
                seeds["parse_code_resources"][key] = z.read(info)
            elif info.file_size >= 4 and not n.endswith("/"):
                with z.open(info) as f:
                    head = f.read(MAX_LEN)
                if head[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe", b"\xca\xfe\xba\xbe"):
                    seeds["parse_macho"][key] = head
                    seeds["check_macho_by_parts"][key] = head
    return seeds


def mdm_event(answer_plist):
    """A NanoMDM webhook event carrying a device's answer."""
    import base64
    import json
    return json.dumps({
        "topic": "mdm.Connect",
        "event_id": "e1",
        "acknowledge_event": {
            "udid": "U", "status": "Error", "command_uuid": "C",
            "raw_payload": base64.b64encode(answer_plist).decode(),
        },
    }).encode()


def main():
    out = sys.argv[1]
    seeds = {
        "parse_plist": {
            "bplist-2000-deep": bplist_nested(2000),
            "bplist-shared-40": bplist_nested(40, 2),
            "xml-3000-deep": xml_nested(3000),
        },
        "parse_cms": {
            "ber-octets-7500-deep": cms_with_content(ber_octets_nested(7500)),
            "der-plist-2000-deep": der_plist_nested(2000),
        },
        "parse_code_resources": {
            "bplist-2000-deep": bplist_nested(2000),
            "xml-3000-deep": xml_nested(3000),
        },
        "parse_profile": {
            "ber-octets-deep": cms_with_content(ber_octets_nested(7500)),
            "bplist-content": cms_with_content(der(0x04, bplist_nested(2000))),
        },
        "parse_mdm_event": {
            "nanomdm-ack": mdm_event(b"<plist><dict><key>CommandUUID</key><string>C</string>"
                                     b"<key>Status</key><string>Error</string><key>ErrorChain</key><array><dict>"
                                     b"<key>ErrorCode</key><integer>25001</integer><key>ErrorDomain</key>"
                                     b"<string>MCProvisioningProfileErrorDomain</string></dict></array></dict></plist>"),
            "deep-payload": mdm_event(xml_nested(3000)),
            "nanomdm-207": b'{"status": {"A": {}, "B": {"command_error": "x"}}, "push_error": "p"}',
        },
        "read_store_documents": {
            "outbox-row": b'{"command_uuid":"019AA8D0-1C00-7E2B-8F3A-5D1C9B0E4A77","udid":"DEV-0000001",'
                          b'"request_type":"InstallProvisioningProfile","profile_uuid":"ACAC0000-0000-4000-8000-000000000001",'
                          b'"status":"not-now","error_chain":"MCMDMErrorDomain 12021","retries":-3,'
                          b'"created_at":"2026-11-22T00:00:00Z","updated_at":"2026-11-23T01:02:03.120Z"}',
            "device": b'{"udid":"DEV-0000001","platform":"iOS","user":"alice",'
                      b'"apps":[{"bundle_id":"com.example.app","version":"1.2"}],'
                      b'"reported":[{"uuid":"ACAC0000-0000-4000-8000-000000000001",'
                      b'"expires":"2027-01-15T00:00:00.000000120Z","managed":false}],'
                      b'"org_group":"Global/EMEA","enrollment_id":"ENR-1"}',
        },
        "read_ipa": {
            "deep-info-plist": ipa(
                [("Payload/A.app/Info.plist", bplist_nested(2000)), ("Payload/A.app/App", b"\xcf\xfa\xed\xfe")]
            ),
            "symlink-through-root": ipa(
                [("Payload/A.app/Info.plist", info_plist()), ("Payload/A.app/App", b"\xcf\xfa\xed\xfe")],
                [("Payload/A.app/x", "../../../Payload/A.app/App"), ("Payload/A.app/l", "x/../../y")],
            ),
            "nested-xctest": ipa(
                [
                    ("Payload/A.app/Info.plist", info_plist()),
                    ("Payload/A.app/App", b"\xcf\xfa\xed\xfe"),
                    ("Payload/A.app/PlugIns/T.xctest/Info.plist", info_plist("T")),
                    ("Payload/A.app/PlugIns/T.xctest/T", b"\xcf\xfa\xed\xfe"),
                    ("Payload/A.app/PlugIns/T.xctest/_CodeSignature/CodeResources", xml_nested(3)),
                ],
                [("Payload/A.app/CodeResources", "_CodeSignature/CodeResources")],
            ),
        },
    }
    if len(sys.argv) > 2:
        for target, files in from_corpus(sys.argv[2]).items():
            seeds.setdefault(target, {}).update(files)
    for target, files in seeds.items():
        d = os.path.join(out, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
