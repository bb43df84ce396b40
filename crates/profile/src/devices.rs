//! A profile's `ProvisionedDevices`, held in one buffer.

use serde::{Serialize, Serializer};

/// The UDIDs of a profile's `ProvisionedDevices`, in file order.
///
/// The text of every UDID sits in one buffer with the end of each beside
/// it, so a list of thousands costs two allocations, not one per device
/// (the per-UDID strings were most of a parse's allocations). It serializes
/// as a JSON array of strings.
///
/// ```
/// use provkit_profile::DeviceList;
/// let list: DeviceList = ["00008030-AAAA", "00008030-bbbb"].into_iter().collect();
/// assert_eq!(list.len(), 2);
/// assert_eq!(list.get(1), Some("00008030-bbbb"));
/// assert!(list.contains_ignore_case("00008030-BBBB"));
/// assert_eq!(list.iter().collect::<Vec<_>>(), ["00008030-AAAA", "00008030-bbbb"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct DeviceList {
    text: String,
    ends: Vec<usize>,
}

impl DeviceList {
    /// An empty list.
    pub const fn new() -> Self {
        DeviceList {
            text: String::new(),
            ends: Vec::new(),
        }
    }

    /// Makes room for `udids` more UDIDs of `bytes` bytes of text in all.
    pub fn reserve(&mut self, udids: usize, bytes: usize) {
        self.ends.reserve(udids);
        self.text.reserve(bytes);
    }

    /// Appends a UDID.
    pub fn push(&mut self, udid: &str) {
        self.text.push_str(udid);
        self.ends.push(self.text.len());
    }

    /// How many UDIDs the list holds.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the list holds none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The UDID at `index`, as written.
    pub fn get(&self, index: usize) -> Option<&str> {
        let end = *self.ends.get(index)?;
        let start = match index {
            0 => 0,
            i => self.ends[i - 1],
        };
        self.text.get(start..end)
    }

    /// The UDIDs in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + '_ {
        (0..self.ends.len()).map(move |i| self.get(i).unwrap_or_default())
    }

    /// Whether `udid` is listed, compared case-insensitively (as UDIDs are).
    pub fn contains_ignore_case(&self, udid: &str) -> bool {
        self.iter().any(|d| d.eq_ignore_ascii_case(udid))
    }
}

impl crate::plist::StringSink for DeviceList {
    fn reserve(&mut self, items: usize, bytes: usize) {
        DeviceList::reserve(self, items, bytes);
    }
    fn push(&mut self, s: &str) {
        DeviceList::push(self, s);
    }
}

impl<S: AsRef<str>> FromIterator<S> for DeviceList {
    fn from_iter<T: IntoIterator<Item = S>>(iter: T) -> Self {
        let mut list = DeviceList::new();
        for s in iter {
            list.push(s.as_ref());
        }
        list
    }
}

impl std::fmt::Debug for DeviceList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for DeviceList {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_udids_keep_their_places() {
        let list: DeviceList = ["", "a", "", "bc"].into_iter().collect();
        assert_eq!(list.len(), 4);
        assert_eq!(list.iter().collect::<Vec<_>>(), ["", "a", "", "bc"]);
        assert_eq!(list.get(4), None);
        assert_eq!(list.iter().next_back(), Some("bc"));
    }

    #[test]
    fn serializes_as_an_array_of_strings() {
        let list: DeviceList = ["x", "y"].into_iter().collect();
        assert_eq!(serde_json::to_string(&list).expect("json"), r#"["x","y"]"#);
        assert_eq!(format!("{list:?}"), r#"["x", "y"]"#);
    }
}
