//! Cron schedules (robfig's five fields, `@every`, `TZ=`): parsed, then the next fire time.
#![no_main]
use libfuzzer_sys::fuzz_target;
use regsync::schedule::Schedule;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else { return };
    if let Ok(s) = Schedule::parse_cron(spec) {
        let start = chrono::DateTime::from_timestamp(1_700_000_000, 0).expect("a fixed time");
        let _ = s.next_after(start);
    }
});
