import COpenSSL
import COpenSSLShim
import Glibc
import PosternCore

/// An OpenSSL server context for STARTTLS on the SMTP listener: one
/// certificate chain and its private key, read once (the daemon reads them
/// again on SIGHUP by making a new context), TLS 1.2 at least, no compression
/// or renegotiation. Clients are not asked for certificates: who may relay is
/// decided by address and AUTH.
public final class TLSServerContext: @unchecked Sendable {
    let context: OpaquePointer

    /// - Parameters:
    ///   - certificateChain: a PEM file, the server's certificate first, then
    ///     its intermediates (`SSL_CTX_use_certificate_chain_file`).
    ///   - privateKey: a PEM file with the key of that certificate.
    public init(certificateChain: String, privateKey: String) throws(TLSError) {
        // As for clients: a peer's reset must not raise SIGPIPE in the daemon.
        signal(SIGPIPE, SIG_IGN)
        guard let context = SSL_CTX_new(TLS_server_method()) else {
            throw .setup("SSL_CTX_new: \(OpenSSLErrors.drain().text)")
        }
        self.context = context
        try TLSContext.configureCommon(context)
        guard SSL_CTX_use_certificate_chain_file(context, certificateChain) == 1 else {
            throw .setup("cannot read the certificate chain \(certificateChain): \(OpenSSLErrors.drain().text)")
        }
        guard SSL_CTX_use_PrivateKey_file(context, privateKey, SSL_FILETYPE_PEM) == 1 else {
            throw .setup("cannot read the private key \(privateKey): \(OpenSSLErrors.drain().text)")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw .setup("the private key \(privateKey) does not match the certificate \(certificateChain)")
        }
    }

    deinit {
        SSL_CTX_free(context)
    }
}
