//! A test guest whose `describe` never answers: upload validation must refuse it in bounded time.

use funnel_sdk::{Call, Next, Plugin, PluginInfo};

struct SlowDescribe;

impl Plugin for SlowDescribe {
    type Config = serde_json::Value;
    type State = ();

    fn info() -> PluginInfo {
        let mut x: u64 = 0;
        loop {
            x = std::hint::black_box(x.wrapping_add(1));
        }
    }

    fn handle(_call: Call<'_, serde_json::Value>, _state: &mut ()) -> Result<Next, String> {
        Ok(Next::End)
    }
}

funnel_sdk::export_plugin!(SlowDescribe);
