//! A string arena: many short strings in one buffer with end offsets. Ids of millions of
//! transactions cost their bytes plus four, instead of a heap allocation each.

#[derive(Debug, Default, Clone)]
pub struct StrArena {
    bytes: String,
    ends: Vec<u32>,
}

impl StrArena {
    pub fn with_capacity(items: usize, bytes: usize) -> Self {
        StrArena {
            bytes: String::with_capacity(bytes),
            ends: Vec::with_capacity(items),
        }
    }

    /// Appends `s`. Panics past 4 GiB of text, far above what one machine's scan holds.
    pub fn push(&mut self, s: &str) {
        self.bytes.push_str(s);
        let end = u32::try_from(self.bytes.len()).expect("string arena exceeds 4 GiB");
        self.ends.push(end);
    }

    pub fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.bytes[start..self.ends[i] as usize]
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_and_returns_strings_in_order() {
        let mut a = StrArena::default();
        for s in ["", "abc", "支付", "x"] {
            a.push(s);
        }
        assert_eq!(a.len(), 4);
        assert_eq!(a.get(0), "");
        assert_eq!(a.get(1), "abc");
        assert_eq!(a.get(2), "支付");
        assert_eq!(a.get(3), "x");
    }
}
