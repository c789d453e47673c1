//! The payload of every status-change notification, built here only.

/// A compile-checked statement that writes status-change notifications: [`withdrawal_query!`]
/// (`$mode` and `$macro` as there) on `$before`, the payload, `$after`, the `Withdrawal`
/// columns and `$tail`. The payload is a SQL expression over a row alias `moved` holding the
/// withdrawal as changed (all its columns) and two more columns: `previous_status` (the status
/// before) and `event_id` (the outbox id). The two statements that change a withdrawal's
/// status write it in the same statement as the change: `withdrawals::settle::write` and the
/// acceptance statement (`withdrawals::submit`).
///
/// [`withdrawal_query!`]: crate::withdrawals::store::withdrawal_query
macro_rules! status_change_query {
    (optional, $macro:ident!($($pre:tt)*), $($rest:tt)+) => {
        $crate::notify::status_change_query!(@with [optional,] $macro!($($pre)*), $($rest)+)
    };
    ($macro:ident!($($pre:tt)*), $($rest:tt)+) => {
        $crate::notify::status_change_query!(@with [] $macro!($($pre)*), $($rest)+)
    };
    (@with [$($mode:tt)*] $macro:ident!($($pre:tt)*), [$($before:tt)+], [$($after:tt)+],
     [$($tail:tt)+] $($args:tt)*) => {
        $crate::withdrawals::store::withdrawal_query!(
            $($mode)* $macro!($($pre)*),
            [$($before)+
                + r#"jsonb_build_object(
                     'id', moved.event_id,
                     'type', 'withdrawal.status_changed',
                     'created_at', to_char(moved.updated_at AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
                     'data', jsonb_build_object(
                         'withdrawal_id', moved.id,
                         'foreign_id', moved.foreign_id,
                         'user_id', moved.user_id,
                         'status', moved.status,
                         'previous_status', moved.previous_status,
                         'provider_status', moved.provider_status,
                         'amount', moved.amount::text,
                         'currency', moved.currency,
                         'convert_to', moved.convert_to,
                         'error', moved.error))"#
                + $($after)+],
            [$($tail)+]
            $($args)*
        )
    };
}
pub(crate) use status_change_query;
