//! Input generation: mutations of seed inputs (byte flips, inserts, deletions, duplications,
//! splices with other seeds, and dictionary tokens from the target's grammar).

/// A seeded generator of inputs for one target.
pub struct Mutator {
    rng: fastrand::Rng,
    seeds: Vec<Vec<u8>>,
    dictionary: Vec<&'static [u8]>,
    max_len: usize,
}

impl Mutator {
    /// A generator from `seeds` (at least one; an empty input is added when none is given),
    /// grammar tokens, the longest input to produce, and the random seed.
    pub fn new(
        seeds: Vec<Vec<u8>>,
        dictionary: Vec<&'static [u8]>,
        max_len: usize,
        seed: u64,
    ) -> Mutator {
        let seeds = if seeds.is_empty() {
            vec![Vec::new()]
        } else {
            seeds
        };
        Mutator {
            rng: fastrand::Rng::with_seed(seed),
            seeds,
            dictionary,
            max_len,
        }
    }

    /// The next input: every 16th is a seed unchanged, the rest a seed with 1–8 mutations.
    pub fn next_input(&mut self) -> Vec<u8> {
        let mut data = self.seeds[self.rng.usize(..self.seeds.len())].clone();
        if self.rng.u8(..16) == 0 {
            return data;
        }
        let rounds = 1 + self.rng.usize(..8);
        for _ in 0..rounds {
            self.mutate(&mut data);
        }
        data.truncate(self.max_len);
        data
    }

    fn pos(&mut self, data: &[u8]) -> usize {
        self.rng.usize(..=data.len())
    }

    fn mutate(&mut self, data: &mut Vec<u8>) {
        match self.rng.u8(..10) {
            // Flip one bit.
            0 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                data[i] ^= 1 << self.rng.u8(..8);
            }
            // Replace one byte with an interesting one.
            1 if !data.is_empty() => {
                let i = self.rng.usize(..data.len());
                const INTERESTING: [u8; 12] = [
                    0, 0xff, 0x7f, 0x80, b'\n', b'"', b'\\', b'{', b'}', b'(', b'[', b'#',
                ];
                data[i] = if self.rng.bool() {
                    INTERESTING[self.rng.usize(..INTERESTING.len())]
                } else {
                    self.rng.u8(..)
                };
            }
            // Insert random bytes.
            2 => {
                let at = self.pos(data);
                let n = 1 + self.rng.usize(..8);
                let bytes: Vec<u8> = (0..n).map(|_| self.rng.u8(..)).collect();
                data.splice(at..at, bytes);
            }
            // Delete a range.
            3 if !data.is_empty() => {
                let a = self.rng.usize(..data.len());
                let n = 1 + self.rng.usize(..(data.len() - a).min(64));
                data.drain(a..a + n);
            }
            // Duplicate a range somewhere else (grows nesting and repetition).
            4 if !data.is_empty() => {
                let a = self.rng.usize(..data.len());
                let n = 1 + self.rng.usize(..(data.len() - a).min(256));
                let piece = data[a..a + n].to_vec();
                let at = self.pos(data);
                let times = 1 + self.rng.usize(..4);
                for _ in 0..times {
                    data.splice(at..at, piece.iter().copied());
                }
            }
            // Splice: the tail of another seed after a prefix of this input.
            5 => {
                let other = &self.seeds[self.rng.usize(..self.seeds.len())];
                let cut = self.rng.usize(..=data.len());
                let from = self.rng.usize(..=other.len());
                data.truncate(cut);
                data.extend_from_slice(&other[from..]);
            }
            // Truncate.
            6 if !data.is_empty() => {
                let n = self.rng.usize(..data.len());
                data.truncate(n);
            }
            // Overwrite a little-endian integer with an extreme value (lengths, counts, offsets).
            7 if data.len() >= 4 => {
                let i = self.rng.usize(..=data.len() - 4);
                const EXTREMES: [u32; 6] =
                    [0, 1, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff, 0x0100_0000];
                let v = EXTREMES[self.rng.usize(..EXTREMES.len())];
                data[i..i + 4].copy_from_slice(&v.to_le_bytes());
            }
            // Insert a dictionary token (falls through to random bytes without a dictionary).
            _ => {
                let at = self.pos(data);
                if self.dictionary.is_empty() {
                    data.insert(at, self.rng.u8(..));
                } else {
                    let t = self.dictionary[self.rng.usize(..self.dictionary.len())];
                    data.splice(at..at, t.iter().copied());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_inputs_and_length_bounded() {
        let mk = || Mutator::new(vec![b"up{a=\"b\"} 1".to_vec()], vec![b"sum("], 64, 7);
        let (mut a, mut b) = (mk(), mk());
        for _ in 0..1000 {
            let x = a.next_input();
            assert_eq!(x, b.next_input());
            assert!(x.len() <= 64);
        }
    }
}
