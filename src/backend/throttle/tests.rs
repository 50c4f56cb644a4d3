use super::*;

fn at(start: Instant, secs: f64) -> Instant {
    start + Duration::from_secs_f64(secs)
}

#[test]
fn backoff_doubles_after_the_threshold_up_to_a_minute() {
    let t0 = Instant::now();
    let mut t = FailureThrottle::new(5, 16);
    let key = "a".to_string();
    for i in 0..4 {
        t.fail(&key, at(t0, f64::from(i)));
        assert_eq!(t.gate(&key, at(t0, f64::from(i))), Gate::Open);
    }
    // The fifth failure blocks for 1 s, the sixth for 2 s, …
    t.fail(&key, at(t0, 4.0));
    assert_eq!(t.gate(&key, at(t0, 4.5)), Gate::Throttled);
    assert_eq!(t.gate(&key, at(t0, 5.0)), Gate::Open);
    t.fail(&key, at(t0, 5.0));
    assert_eq!(t.gate(&key, at(t0, 6.9)), Gate::Throttled);
    assert_eq!(t.gate(&key, at(t0, 7.0)), Gate::Open);
    // Keep failing as soon as allowed: the blocks cap at 60 s.
    let mut now = 7.0;
    let mut last_block = 0.0;
    for _ in 0..10 {
        t.fail(&key, at(t0, now));
        let mut next = now;
        while t.gate(&key, at(t0, next)) == Gate::Throttled {
            next += 0.5;
        }
        last_block = next - now;
        now = next;
    }
    assert!((59.5..=60.0).contains(&last_block), "{last_block}");
    // Another key is not affected.
    assert_eq!(t.gate(&"b".to_string(), at(t0, now - 1.0)), Gate::Open);
}

#[test]
fn a_guesser_gets_under_100_checks_a_minute() {
    let t0 = Instant::now();
    let mut t = FailureThrottle::new(5, 16);
    let key = 1u32;
    let mut first_minute = 0;
    let mut checks = 0;
    // One try every 10 ms for ten minutes.
    for ms in (0..600_000u64).step_by(10) {
        let now = t0 + Duration::from_millis(ms);
        if t.gate(&key, now) == Gate::Open {
            checks += 1;
            if ms < 60_000 {
                first_minute += 1;
            }
            t.fail(&key, now);
        }
    }
    assert_eq!(first_minute, 5 + 5);
    assert!(checks <= 5 + 7 + 9, "{checks}");
}

#[test]
fn success_and_a_quiet_spell_forgive() {
    let t0 = Instant::now();
    let mut t = FailureThrottle::new(2, 16);
    let key = 7u8;
    t.fail(&key, t0);
    t.fail(&key, t0);
    assert_eq!(t.gate(&key, t0), Gate::Throttled);
    t.forgive(&key);
    assert_eq!(t.gate(&key, t0), Gate::Open);
    t.fail(&key, t0);
    // After a quiet spell the old failure is forgotten: one more is not
    // enough.
    t.fail(&key, at(t0, 121.0));
    assert_eq!(t.gate(&key, at(t0, 121.0)), Gate::Open);
}

#[test]
fn tables_are_bounded_and_forget_the_oldest() {
    let t0 = Instant::now();
    let mut t = FailureThrottle::new(1, 3);
    for k in 0..3u32 {
        t.fail(&k, t0);
    }
    assert_eq!(t.gate(&0, t0), Gate::Throttled);
    t.fail(&3, t0);
    assert_eq!(t.keys.map.len(), 3);
    assert_eq!(t.gate(&0, t0), Gate::Open, "the oldest was forgotten");
    assert_eq!(t.gate(&1, t0), Gate::Throttled);
    assert_eq!(t.gate(&3, t0), Gate::Throttled);
}

#[test]
fn creations_are_limited_per_source_and_in_total() {
    let t0 = Instant::now();
    let a = Some("10.0.0.1".parse().unwrap());
    let b = Some("10.0.0.2".parse().unwrap());
    let mut c = CreateLimit::new(2, 3, 16);
    assert_eq!(c.take(a, t0), CreateGate::Open);
    assert_eq!(c.take(a, t0), CreateGate::Open);
    assert_eq!(c.take(a, t0), CreateGate::Limited);
    c.give_back(a);
    assert_eq!(c.take(a, t0), CreateGate::Open);
    assert_eq!(c.take(b, t0), CreateGate::Open);
    assert_eq!(c.take(b, t0), CreateGate::Limited, "global cap");
    c.give_back(a);
    assert_eq!(c.take(b, t0), CreateGate::Open);
    assert_eq!(c.take(b, t0), CreateGate::Limited, "per source");
    // The next window starts afresh.
    assert_eq!(c.take(a, at(t0, 60.0)), CreateGate::Open);
}

#[test]
fn keys_of_sources_and_accounts() {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(source_key("127.0.0.2:4000"), Some(ip("127.0.0.2")));
    assert_eq!(
        source_key("[2001:db8:1:2::9]:80"),
        Some(ip("2001:db8:1:2::"))
    );
    assert_eq!(source_key("nonsense"), None);
    assert_eq!(&*account_key("AbC"), b"abc");
    assert_eq!(account_key(&"x".repeat(100)).len(), MAX_KEY_BYTES);
}
