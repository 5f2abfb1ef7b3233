import Config
import FuzzSupport
import SpoolDrop

/// The configuration file's checks (`Configuration.parse`: TOMLKit's syntax,
/// then Postern's own rules for every key, transport and route, and `-o`
/// overrides), and the drop program's own reader of the same file
/// (`SpoolDrop.DropSettings`, which runs set-group-ID without a TOML library).
///
/// The input is the file's text, then after a NUL byte the overrides, one a
/// line. Invariants: a configuration that parses renders (`rendered()`, what
/// `postern config check` prints) to text that parses back to an equal one;
/// and the drop reads, from a file the full parser accepts, the same host
/// name, maximum size and recipients (a test holds the two to that on fixed
/// files; this holds them on any).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ count: Int) -> Int32 {
    var input = FuzzInput(data, count)
    let text = input.string()
    let overrides = input.string().split(separator: "\n", omittingEmptySubsequences: true).prefix(4).map(String.init)

    let drop = try? SpoolDrop.DropSettings.parse(text, source: "fuzz")
    let defaultHostname = "host.example.org"
    let configuration: Configuration
    do {
        configuration = try Configuration.parse(text, source: "fuzz", overrides: overrides, defaultHostname: defaultHostname)
    } catch {
        _ = error.description
        return 0
    }
    let rendered = configuration.rendered()
    do {
        let again = try Configuration.parse(rendered, source: "rendered", overrides: [], defaultHostname: "other.example.net")
        require(again == configuration, "the rendered configuration parses to another one:\n\(rendered)")
    } catch {
        fail("the rendered configuration does not parse: \(error)\n\(rendered)")
    }
    guard overrides.isEmpty else { return 0 }
    guard let drop else { fail("the drop refuses a file the full parser accepts") }
    require((drop.hostname ?? defaultHostname) == configuration.hostname,
            "the drop reads hostname \(shown(drop.hostname ?? "(none)")), the daemon \(shown(configuration.hostname))")
    require(drop.maxMessageSize == configuration.drop.maxMessageSize,
            "the drop reads max_message_size \(drop.maxMessageSize), the daemon \(configuration.drop.maxMessageSize)")
    require(drop.maxRecipients == configuration.drop.maxRecipients,
            "the drop reads max_recipients \(drop.maxRecipients), the daemon \(configuration.drop.maxRecipients)")
    return 0
}
