internal import COpenSSL
internal import Glibc

/// Verification callbacks, called by OpenSSL during `SSL_do_handshake`.
extension TLSConnection {
    /// Called for each certificate that passed OpenSSL's checks, the leaf (depth 0) last. On a
    /// server the leaf must name exactly one tunnel identity; refusing it here, inside the
    /// handshake, lets OpenSSL send the alert instead of failing silently afterwards.
    func acceptVerifiedCertificate(_ storeContext: OpaquePointer) -> Int32 {
        guard context.configuration.role == .server, X509_STORE_CTX_get_error_depth(storeContext) == 0,
            let leaf = X509_STORE_CTX_get_current_cert(storeContext)
        else { return 1 }
        do {
            peerIdentity = try Certificate.retaining(leaf).tunnelIdentity()
            return 1
        } catch let error as TLSError {
            verificationFailure = .identity(error)
        } catch {
            verificationFailure = .identity(TLSError(.invalidIdentity, "\(error)"))
        }
        X509_STORE_CTX_set_error(storeContext, X509_V_ERR_APPLICATION_VERIFICATION)
        return 0
    }

    /// Called from the ClientHello callback: an offer of the enrollment protocol alone makes this
    /// an enrollment connection, whose client certificate is optional. False when the client
    /// offered no ALPN at all.
    func classifyClientHello() -> Bool {
        var data: UnsafePointer<UInt8>?
        var length = 0
        guard
            SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation), &data, &length)
                == 1,
            let data, length >= 2
        else {
            // A client without TLS 1.3 (no supported_versions) is left to the version check, whose
            // message says what is wrong with it.
            var versions: UnsafePointer<UInt8>?
            var versionsLength = 0
            refusedForNoALPN =
                SSL_client_hello_get0_ext(ssl, UInt32(TLSEXT_TYPE_supported_versions), &versions, &versionsLength) == 1
            return !refusedForNoALPN
        }
        // The extension body is a 2-byte list length, then the list.
        let list = UnsafeBufferPointer(start: data + 2, count: min(length - 2, Int(data[0]) << 8 | Int(data[1])))
        let names = applicationProtocolNames(list)
        if holdAtClientHello != nil {
            // The peer's list, bounded: the first names decide which protocol it gets anyway.
            offeredProtocols = names.prefix(Self.heldOfferLimit).map { String(decoding: list[$0], as: UTF8.self) }
        }
        guard let enrollment = context.enrollmentProtocolWire else { return true }
        guard names.count == 1, list[names[0]].elementsEqual(enrollment) else { return true }
        isEnrollment = true
        SSL_set_verify(ssl, SSL_VERIFY_PEER, recordingVerifyCallback)
        return true
    }

    /// On an enrollment connection, an expired client certificate that is otherwise valid (a
    /// trusted chain, good signatures) is let through and flagged, so a node that slept past its
    /// expiry can prove its enrolled key. Nothing else is tolerated.
    func toleratesExpiredEnrollmentCertificate(_ storeContext: OpaquePointer) -> Bool {
        guard isEnrollment, X509_STORE_CTX_get_error_depth(storeContext) == 0,
            X509_STORE_CTX_get_error(storeContext) == X509_V_ERR_CERT_HAS_EXPIRED
        else { return false }
        peerCertificateExpired = true
        X509_STORE_CTX_set_error(storeContext, X509_V_OK)
        return true
    }

    func recordVerificationFailure(_ storeContext: OpaquePointer) {
        guard verificationFailure == nil else { return }
        let certificate = X509_STORE_CTX_get_current_cert(storeContext).flatMap { try? Certificate.retaining($0) }
        verificationFailure = .x509(
            code: X509_STORE_CTX_get_error(storeContext),
            depth: X509_STORE_CTX_get_error_depth(storeContext),
            certificate: certificate
        )
    }

    /// CA-pin mode: find the certificate in the presented chain whose SHA-256 is the pin, make it
    /// the only trust anchor, and run the normal verification (signatures, dates, host) against it.
    func verifyAgainstPin(_ storeContext: OpaquePointer) -> Int32 {
        guard case .pinnedCA(let pin) = context.configuration.peerVerification,
            let presented = X509_STORE_CTX_get0_untrusted(storeContext)
        else { return 0 }
        var presentedCertificates: [Certificate] = []
        for index in 0..<tunnel_sk_X509_num(presented) {
            guard let x509 = tunnel_sk_X509_value(presented, index), let certificate = try? Certificate.retaining(x509)
            else { continue }
            presentedCertificates.append(certificate)
            guard certificate.sha256Fingerprint == pin else { continue }
            guard let stack = tunnel_sk_X509_new_null(), tunnel_sk_X509_push(stack, x509) > 0 else { return 0 }
            if let previous = pinnedTrustStack { tunnel_sk_X509_free(previous) }
            pinnedTrustStack = stack
            X509_STORE_CTX_set0_trusted_stack(storeContext, stack)
            return X509_verify_cert(storeContext)
        }
        verificationFailure = .pinMismatch(pin: pin, presented: presentedCertificates)
        X509_STORE_CTX_set_error(storeContext, X509_V_ERR_CERT_UNTRUSTED)
        return 0
    }
}
