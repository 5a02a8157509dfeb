use super::*;

#[test]
fn the_tick_is_an_eighth_of_the_smallest_limit_within_bounds() {
    assert_eq!(
        period(Duration::from_millis(50)),
        Duration::from_micros(6250)
    );
    assert_eq!(period(Duration::from_millis(2)), MIN_TICK);
    assert_eq!(period(Duration::from_secs(60)), MAX_TICK);
    assert_eq!(period(Duration::from_micros(u64::MAX)), MAX_TICK);
}
