//! Tests of the conformance suite itself: a correct in-memory sink passes it, and sinks that
//! break one promise each fail the behaviour that checks it.

mod broken;
mod memory;

mod with_previous {
    rotator_testkit::conformance_tests!(|| async {
        crate::memory::Target::new(crate::memory::Faults::default())
    });
}

mod without_previous {
    use crate::memory::{Faults, Target};

    async fn target() -> Target {
        Target::new(Faults {
            no_previous: true,
            ..Faults::default()
        })
    }

    rotator_testkit::conformance_tests!(target);
}

#[tokio::test]
async fn run_all_passes_on_a_correct_sink() {
    let target = memory::Target::new(memory::Faults::default());
    rotator_testkit::run_all(&target).await;
}

mod peers;
