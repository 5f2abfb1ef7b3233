/// When the delayed DSN is due: once per message, right after the attempt that
/// reaches `dsn.delay_warning_attempts` leaves recipients pending (mox sends it
/// after the fifth attempt, about two hours in).
public enum DelayWarning {
    public static func isDue(attempts: Int, threshold: Int, pendingRecipients: Int) -> Bool {
        threshold > 0 && attempts == threshold && pendingRecipients > 0
    }
}
