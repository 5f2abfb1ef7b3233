import COpenSSL
import COpenSSLShim
import Glibc
import PosternCore

/// A TLS client connection over a connected socket (after STARTTLS, or at once
/// for implicit TLS on port 465), non-blocking, every wait bounded by a deadline.
public final class TLSStream: ByteStream {
    private let ssl: OpaquePointer
    /// The plain stream underneath, kept alive because it owns the socket.
    private let underlying: ByteStream
    public private(set) var info: TLSSessionInfo
    public var fileDescriptor: Int32 { underlying.fileDescriptor }

    /// Performs the handshake.
    ///
    /// - Throws: `StreamError.tls` for TLS failures (with `enforce`, a failed
    ///   verification is one), `.timeout` or `.closed` for the network.
    public init(over underlying: ByteStream, options: TLSClientOptions, deadline: Deadline) throws(StreamError) {
        ssl = try Self.connection(options.context.context, over: underlying)
        self.underlying = underlying
        info = TLSSessionInfo(version: "", cipher: "", peerSubject: nil, verificationMode: .unverified,
                              verified: false, verificationFailure: nil, matchedTLSA: nil, unusableTLSA: [])
        if let name = options.serverName, shim_SSL_set_tlsext_host_name(ssl, name) != 1 {
            throw .tls(.setup("cannot set SNI name \(name)"))
        }
        let usable = try configureVerification(options)
        try handshake(deadline: deadline, step: SSL_connect)
        finishInfo(options, usableRecords: usable)
        if options.enforce, let failure = info.verificationFailure {
            throw .tls(.verification(failure))
        }
    }

    /// The server's side of a handshake (STARTTLS on the SMTP listener):
    /// no verification of the client, whose identity is its AUTH.
    public init(acceptingOver underlying: ByteStream, context: TLSServerContext, deadline: Deadline) throws(StreamError) {
        ssl = try Self.connection(context.context, over: underlying)
        self.underlying = underlying
        info = TLSSessionInfo(version: "", cipher: "", peerSubject: nil, verificationMode: .unverified,
                              verified: false, verificationFailure: nil, matchedTLSA: nil, unusableTLSA: [])
        try handshake(deadline: deadline, step: SSL_accept)
        info.version = String(cString: SSL_get_version(ssl))
        info.cipher = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? ""
    }

    deinit {
        SSL_free(ssl)
    }

    /// A new SSL object of `context` on the stream's socket.
    private static func connection(_ context: OpaquePointer, over underlying: ByteStream) throws(StreamError) -> OpaquePointer {
        guard let ssl = SSL_new(context) else {
            throw .tls(.setup("SSL_new: \(OpenSSLErrors.drain().text)"))
        }
        guard SSL_set_fd(ssl, underlying.fileDescriptor) == 1 else {
            SSL_free(ssl)
            throw .tls(.setup("SSL_set_fd: \(OpenSSLErrors.drain().text)"))
        }
        return ssl
    }

    /// Sets names, TLSA records and the verify mode. Returns the usable TLSA count.
    private func configureVerification(_ options: TLSClientOptions) throws(StreamError) -> Int {
        let enforceMode = options.enforce ? SSL_VERIFY_PEER : SSL_VERIFY_NONE
        switch options.verification {
        case .none:
            SSL_set_verify(ssl, SSL_VERIFY_NONE, nil)
            return 0
        case .pkix(let hostnames):
            info.verificationMode = .pkix
            SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
            for (index, name) in hostnames.enumerated() {
                let added = index == 0 ? SSL_set1_host(ssl, name) : SSL_add1_host(ssl, name)
                guard added == 1 else { throw .tls(.setup("cannot add reference name \(name)")) }
            }
            SSL_set_verify(ssl, enforceMode, nil)
            return 0
        case .dane(let records, let hostnames):
            info.verificationMode = .dane
            guard SSL_dane_enable(ssl, hostnames.first) > 0 else {
                throw .tls(.setup("SSL_dane_enable: \(OpenSSLErrors.drain().text)"))
            }
            for name in hostnames.dropFirst() where SSL_add1_host(ssl, name) != 1 {
                throw .tls(.setup("cannot add reference name \(name)"))
            }
            // RFC 7672 3.2.3: with DANE-EE the certificate's names do not matter.
            SSL_dane_set_flags(ssl, UInt(DANE_FLAG_NO_DANE_EE_NAMECHECKS))
            var usable = 0
            for record in records {
                let added = record.data.withUnsafeBufferPointer { data in
                    SSL_dane_tlsa_add(ssl, record.usage, record.selector, record.matchingType,
                                      UnsafeMutablePointer(mutating: data.baseAddress), data.count)
                }
                if added > 0 { usable += 1 } else { info.unusableTLSA.append(record) }
                if added < 0 { _ = OpenSSLErrors.drain() }   // malformed data: reported as unusable
            }
            // With no usable record OpenSSL would fall back to PKIX; RFC 7672 2.2
            // says to treat the server as having no TLSA records, which policy
            // decides on: the handshake goes on and the failure is reported.
            SSL_set_verify(ssl, usable > 0 ? enforceMode : SSL_VERIFY_NONE, nil)
            return usable
        }
    }

    private func handshake(deadline: Deadline,
                           step: (OpaquePointer?) -> Int32) throws(StreamError) {
        while true {
            ERR_clear_error()
            let result = step(ssl)
            if result == 1 { return }
            let code = SSL_get_error(ssl, result)
            switch code {
            case SSL_ERROR_WANT_READ: try waitFor(fileDescriptor, events: Int16(POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try waitFor(fileDescriptor, events: Int16(POLLOUT), deadline: deadline)
            default: throw failure(code, during: "handshake")
            }
        }
    }

    /// Maps a failed SSL call to the error that explains it.
    private func failure(_ code: Int32, during step: String) -> StreamError {
        let errors = OpenSSLErrors.drain()
        let verify = SSL_get_verify_result(ssl)
        if step == "handshake", verify != X509_V_OK {
            return .tls(.verification(VerificationFailure(code: verify)))
        }
        if errors.reasons.contains(where: { $0 == SSL_R_UNSUPPORTED_PROTOCOL || $0 == SSL_R_TLSV1_ALERT_PROTOCOL_VERSION
            || $0 == SSL_R_WRONG_VERSION_NUMBER }) {
            return .tls(.protocolVersion(errors.text))
        }
        if code == SSL_ERROR_ZERO_RETURN || (code == SSL_ERROR_SYSCALL && errors.text.isEmpty) {
            return .closed
        }
        if code == SSL_ERROR_SYSCALL, errno != 0 {
            return .system(operation: "TLS \(step)", code: errno)
        }
        return .tls(.handshake(errors.text.isEmpty ? "SSL error \(code) during \(step)" : errors.text))
    }

    private func finishInfo(_ options: TLSClientOptions, usableRecords: Int) {
        info.version = String(cString: SSL_get_version(ssl))
        info.cipher = SSL_get_current_cipher(ssl).map { String(cString: SSL_CIPHER_get_name($0)) } ?? ""
        if let certificate = SSL_get0_peer_certificate(ssl), let name = X509_get_subject_name(certificate),
           let line = X509_NAME_oneline(name, nil, 0) {
            info.peerSubject = String(cString: line)
            shim_OPENSSL_free(line)
        }
        guard options.verification != .none else { return }
        if case .dane = options.verification, usableRecords == 0 {
            info.verificationFailure = VerificationFailure(reason: .noUsableTLSARecords, code: 0,
                                                           detail: "none of the TLSA records can be used")
            return
        }
        if SSL_get0_peer_certificate(ssl) == nil {
            info.verificationFailure = VerificationFailure(reason: .noCertificate, code: 0, detail: "the server sent no certificate")
            return
        }
        let result = SSL_get_verify_result(ssl)
        if result == X509_V_OK {
            info.verified = true
            var usage: UInt8 = 0, selector: UInt8 = 0, matching: UInt8 = 0
            var data: UnsafePointer<UInt8>?
            var length = 0
            if SSL_get0_dane_tlsa(ssl, &usage, &selector, &matching, &data, &length) >= 0, let data {
                info.matchedTLSA = TLSARecord(usage: usage, selector: selector, matchingType: matching,
                                              data: Array(UnsafeBufferPointer(start: data, count: length)))
            }
        } else {
            info.verificationFailure = VerificationFailure(code: Int(result))
        }
    }

    /// Channel binding data for SCRAM-PLUS: `tls-exporter` (RFC 9266) on TLS 1.3,
    /// `tls-unique` (RFC 5929) on TLS 1.2, where the exporter is unsafe without
    /// extended master secret.
    public var channelBinding: (type: String, data: [UInt8])? {
        if SSL_version(ssl) >= TLS1_3_VERSION {
            var out = [UInt8](repeating: 0, count: 32)
            let label = "EXPORTER-Channel-Binding"
            let ok = SSL_export_keying_material(ssl, &out, out.count, label, label.utf8.count, nil, 0, 0)
            return ok == 1 ? ("tls-exporter", out) : nil
        }
        var finished = [UInt8](repeating: 0, count: 64)
        let length = SSL_get_finished(ssl, &finished, finished.count)
        return length > 0 ? ("tls-unique", Array(finished.prefix(length))) : nil
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer, deadline: Deadline) throws(StreamError) -> Int {
        while true {
            ERR_clear_error()
            var count = 0
            if SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count) == 1 { return count }
            let code = SSL_get_error(ssl, 0)
            switch code {
            case SSL_ERROR_WANT_READ: try waitFor(fileDescriptor, events: Int16(POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try waitFor(fileDescriptor, events: Int16(POLLOUT), deadline: deadline)
            case SSL_ERROR_ZERO_RETURN: return 0
            default:
                let error = failure(code, during: "read")
                if error == .closed { return 0 }
                throw error
            }
        }
    }

    public func write(_ bytes: UnsafeRawBufferPointer, deadline: Deadline) throws(StreamError) {
        var offset = 0
        while offset < bytes.count {
            ERR_clear_error()
            var count = 0
            if SSL_write_ex(ssl, bytes.baseAddress! + offset, bytes.count - offset, &count) == 1 {
                offset += count
                continue
            }
            let code = SSL_get_error(ssl, 0)
            switch code {
            case SSL_ERROR_WANT_READ: try waitFor(fileDescriptor, events: Int16(POLLIN), deadline: deadline)
            case SSL_ERROR_WANT_WRITE: try waitFor(fileDescriptor, events: Int16(POLLOUT), deadline: deadline)
            default: throw failure(code, during: "write")
            }
        }
    }

    /// Sends close_notify without waiting for the peer's (RFC 8446 6.1 allows that).
    public func shutdown() {
        _ = SSL_shutdown(ssl)
    }
}
