//! How many allocations a profile parse makes: with the system allocator
//! each one costs tens of nanoseconds, and one per listed device was most
//! of a 100-device parse (171 allocations before `DeviceList`, 56 with
//! it, 44 once the list is sized before it is filled). Counted by
//! `allocation-counter`, which tallies this thread's calls.

use provkit_profile::ProvisioningProfile;
use provkit_profile::fixtures::{ProfileSpec, TestCa, signed_profile};

fn allocations_to_parse(devices: usize) -> u64 {
    let bytes = signed_profile(
        &TestCa::rsa(),
        &ProfileSpec {
            devices: Some(devices),
            ..ProfileSpec::default()
        },
    );
    let mut listed = 0;
    let info = allocation_counter::measure(|| {
        let file = ProvisioningProfile::from_der(&bytes).expect("parse");
        listed = file.profile().devices().len();
    });
    assert_eq!(listed, devices);
    info.count_total
}

#[test]
fn a_parse_made_an_allocation_per_listed_device() {
    let hundred = allocations_to_parse(100);
    let two_thousand = allocations_to_parse(2000);
    eprintln!("allocations: 100 devices {hundred}, 2000 devices {two_thousand}");
    // The device list is sized once from the array's text: no more
    // allocations for 2,000 devices than for 100.
    assert!(
        two_thousand <= hundred + 2,
        "100 devices: {hundred} allocations, 2000: {two_thousand}"
    );
    assert!(hundred <= 45, "100 devices: {hundred} allocations");
}
