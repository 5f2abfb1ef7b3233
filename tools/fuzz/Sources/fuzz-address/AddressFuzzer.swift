import FuzzSupport
@testable import PosternBase

/// The address parser: RFC 5321 mailboxes (`MailboxAddress`), IDNA with the
/// UTS #46 mapping and Punycode (`IDNA`, `Punycode`), and the header address
/// lists of `sendmail -t` (`AddressList`), on one text.
///
/// Invariants: an accepted mailbox's SMTP form has no control character (CR
/// and LF above all: it goes into MAIL FROM and RCPT TO), keeps RFC 5321's
/// lengths, has an ASCII domain, and parses again to itself; an A-label domain
/// converts to itself and back from its U-label form; Punycode decodes what it
/// encodes; every address an address list yields parses or is refused, never
/// crashes.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzAddress(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    let text = String(decoding: FuzzInput(data, count).bytes, as: UTF8.self)
    checkMailbox(text)
    checkDomain(text)
    checkPunycode(text)
    if let addresses = try? AddressList.addresses(in: text) {
        for address in addresses { checkMailbox(address) }
    }
    // A bare local part completed with a domain, as `sendmail root` is.
    if let at = text.lastIndex(of: "@") {
        let local = String(text[..<at]), domain = String(text[text.index(after: at)...])
        if let mailbox = try? MailboxAddress(parsing: local, completingWith: domain) { checkAccepted(mailbox) }
    }
    return 0
}

func checkMailbox(_ text: String) {
    guard let mailbox = try? MailboxAddress(parsing: text) else { return }
    require(!hasControl(text), "a mailbox with a control character was accepted: \(shown(text))")
    checkAccepted(mailbox)
}

func checkAccepted(_ mailbox: MailboxAddress) {
    let form = mailbox.smtpForm
    require(!hasControl(form), "a mailbox's SMTP form has a control character: \(shown(form))")
    require(form.utf8.count <= MailboxAddress.maxPathOctets, "a mailbox's SMTP form is \(form.utf8.count) octets")
    require(mailbox.localPart.utf8.count <= MailboxAddress.maxLocalPartOctets, "a local part over 64 octets")
    require(!form.contains(" ") || mailbox.localPart.hasPrefix("\""), "a space outside a quoted local part: \(shown(form))")
    require(mailbox.host.smtpForm.unicodeScalars.allSatisfy(\.isASCII), "a non-ASCII domain in SMTP form: \(shown(form))")
    require(mailbox.requiresSMTPUTF8 == !mailbox.localPart.unicodeScalars.allSatisfy(\.isASCII), "SMTPUTF8 need misjudged")
    let again: MailboxAddress
    do {
        again = try MailboxAddress(parsing: form)
    } catch {
        fail("an accepted mailbox's SMTP form \(shown(form)) does not parse: \(error)")
    }
    require(again.smtpForm == form, "a mailbox's SMTP form \(shown(form)) parses to \(shown(again.smtpForm))")
    require(again.host == mailbox.host, "a mailbox's host changes when its SMTP form is parsed again: \(shown(form))")
}

func checkDomain(_ text: String) {
    guard let ascii = try? IDNA.toASCII(text) else {
        _ = IDNA.toUnicode(text)   // never fails; must not crash either
        return
    }
    require(!ascii.isEmpty && ascii.utf8.count <= IDNA.maxDomainOctets, "an A-label domain of \(ascii.utf8.count) octets")
    require(ascii.unicodeScalars.allSatisfy { $0.isASCII && !hasControl(String($0)) }, "a non-ASCII A-label domain: \(shown(ascii))")
    require(ascii == ascii.lowercased(), "an A-label domain not in lower case: \(shown(ascii))")
    let again: String
    do {
        again = try IDNA.toASCII(ascii)
    } catch {
        fail("the A-label form \(shown(ascii)) of \(shown(text)) is refused: \(error)")
    }
    require(again == ascii, "the A-label form \(shown(ascii)) converts to \(shown(again))")
    let unicode = IDNA.toUnicode(ascii)
    do {
        let back = try IDNA.toASCII(unicode)
        require(back == ascii, "the U-label form \(shown(unicode)) of \(shown(ascii)) converts to \(shown(back))")
    } catch {
        fail("the U-label form \(shown(unicode)) of \(shown(ascii)) is refused: \(error)")
    }
}

func checkPunycode(_ text: String) {
    let scalars = Array(text.unicodeScalars.prefix(256))
    if let encoded = try? Punycode.encode(scalars) {
        require(encoded.unicodeScalars.allSatisfy(\.isASCII), "Punycode output is not ASCII: \(shown(encoded))")
        // RFC 3492 decodes a text of basic code points only when it has non-basic ones.
        if scalars.contains(where: { !$0.isASCII }) {
            do {
                let decoded = try Punycode.decode(encoded)
                require(decoded == scalars, "Punycode does not decode \(shown(encoded)) to what it encoded")
            } catch {
                fail("Punycode's own encoding \(shown(encoded)) does not decode: \(error)")
            }
        }
    }
    if let decoded = try? Punycode.decode(text), let encoded = try? Punycode.encode(decoded) {
        // Decoding is case-insensitive and a trailing delimiter is optional
        // without basic code points: compare what the encoding decodes to.
        require((try? Punycode.decode(encoded)) == decoded, "Punycode is not stable on \(shown(text))")
    }
}
