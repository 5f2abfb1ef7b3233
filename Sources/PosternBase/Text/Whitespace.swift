extension StringProtocol {
    /// The text without leading and trailing white space (Unicode's
    /// White_Space property, line breaks included): Foundation's
    /// `trimmingCharacters(in: .whitespacesAndNewlines)` for code that must not
    /// load Foundation.
    public func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }
}
