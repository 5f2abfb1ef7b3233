extension DropProgram {
    /// `--help`, as a man page would say it.
    static let help = """
        USAGE: sendmail [flags] [--] [recipient ...]
               postern drop [flags] [--] [recipient ...]

        Read one message on standard input and drop it into the spool, durably: a
        successful exit means the message survives a power loss. This is
        postern-drop, the small program behind /usr/sbin/sendmail, 'postern drop' and
        'postern sendmail'; it takes sendmail's command line, for cron, PHP and scripts.

        The message is read until end of file, or until a line with a single dot unless
        -i is given. Line endings are stored as CRLF. From:, Date: and Message-ID: are
        added when missing; Bcc: is removed. Every address is checked (RFC 5321 syntax,
        IDN domains mapped by UTS #46 and stored in A-label form, control characters
        refused). A recipient or -f sender without a domain (root) is this host's:
        it is completed with the hostname setting, as for a generated Message-ID.
        A line longer than 998 octets (RFC 5322 2.1.1) refuses the message
        rather than fold it silently.

        FLAGS
          -t            Also take recipients from To:, Cc: and Bcc:.
          -f SENDER     Envelope sender ('<>' or '' for the null sender); also -r.
                        Default: the invoking user at the configured hostname.
          -F NAME       Full name for a generated From: header.
          -i, -oi       A line with a single dot does not end the message.
          -bm           Queue the message (the default).
          -bp           List the queue, as mailq (runs 'postern list').
          -v            Print the queue ID.
          --spool DIR   The spool directory (default /var/spool/postern).
          --require-tls REQUIRETLS (RFC 8689): deliver only over verified TLS (DANE or
                        MTA-STS enforce) to servers that offer REQUIRETLS, else bounce.
                        It outweighs a 'TLS-Required: No' header.
          -R full|hdrs  What a failure notice (DSN) returns: the whole message or its
                        headers only (RFC 3461 RET). Default: dsn.return_full_up_to.
          -V ENVID      An envelope ID (RFC 3461 ENVID), returned in the
                        Original-Envelope-Id: of every DSN and passed to the next
                        server: printable ASCII, at most 100 characters as xtext.
        Accepted and ignored for compatibility: -odi -odb -odq -oem -oee -om and other
        -o options, -B TYPE, -N DSN, -h N, -L TAG, -C FILE, -U, -G, -n, -m.

        SETTINGS
          hostname, drop.max_message_size and drop.max_recipients come from
          /etc/postern/postern.toml (POSTERN_CONFIG names another file);
          POSTERN_HOSTNAME and POSTERN_MESSAGE_SIZE_LIMIT override them, and
          POSTERN_SPOOL names the spool. Installed set-group-ID, the program ignores
          --spool and every POSTERN_ variable, and reads the configuration file only
          if root owns it and only root may write it.

        Nothing is printed on success (the queue ID with -v). A failed drop leaves
        nothing in the drop area.

        EXIT STATUS
          0 queued; 64 bad flags; 65 bad address or header, no recipients, too many
          recipients, NUL byte, over-long line or over-size message; 66 empty message;
          73 no spool; 75 spool full, read-only or locked (try again); 77 not allowed
          to drop; 78 the configuration file is invalid.
        """
}
