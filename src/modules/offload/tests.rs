use std::time::{Duration, Instant};

use super::*;

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or_default()
        .to_string()
}

/// Busy for `d`, yielding every millisecond, as a hook call yields at each epoch tick.
async fn spin(d: Duration) -> String {
    let until = Instant::now() + d;
    while Instant::now() < until {
        let tick = Instant::now() + Duration::from_millis(1);
        while Instant::now() < tick {}
        tokio::task::yield_now().await;
    }
    thread_name()
}

#[test]
fn a_short_call_stays_and_a_long_one_moves_to_the_hook_threads() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let offload = Offload::new(1);
    std::thread::Builder::new()
        .name("proxy".into())
        .spawn(move || {
            rt.block_on(async {
                let short = offload.run(async { thread_name() }).await.unwrap();
                assert_eq!(short, "proxy");
                let long = offload.run(spin(Duration::from_millis(50))).await.unwrap();
                assert_eq!(long, "dgate-hooks");
            });
        })
        .unwrap()
        .join()
        .unwrap();
}
