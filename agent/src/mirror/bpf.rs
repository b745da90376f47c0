//! A tiny assembler for classic BPF (the socket filter language of
//! `SO_ATTACH_FILTER`): instructions are pushed in order, jumps name
//! labels, and [`Asm::finish`] resolves them, refusing a jump that
//! classic BPF cannot encode (backwards, or more than 255 instructions
//! ahead) instead of truncating its offset.
//!
//! Also, for tests, an interpreter of the opcodes the capture filter uses,
//! which treats a load past the packet as the kernel does (the packet is
//! dropped).

use std::io;

// Classic BPF opcodes (linux/filter.h).
pub const LD_W_ABS: u16 = 0x20;
pub const LD_H_ABS: u16 = 0x28;
pub const LD_B_ABS: u16 = 0x30;
pub const LD_H_IND: u16 = 0x48;
pub const LD_B_IND: u16 = 0x50;
pub const LDX_B_MSH: u16 = 0xb1;
pub const LD_MEM: u16 = 0x60;
pub const LDX_MEM: u16 = 0x61;
pub const LDX_IMM: u16 = 0x01;
pub const ST: u16 = 0x02;
pub const ALU_ADD_K: u16 = 0x04;
pub const ALU_ADD_X: u16 = 0x0c;
pub const ALU_AND_K: u16 = 0x54;
pub const ALU_LSH_K: u16 = 0x64;
pub const ALU_RSH_K: u16 = 0x74;
pub const TAX: u16 = 0x07;
/// Unconditional jumps: the filter has none (every jump is conditional);
/// the interpreter and the scratch-word check know them.
#[cfg(test)]
pub const JA: u16 = 0x05;
pub const JEQ_K: u16 = 0x15;
pub const JGT_X: u16 = 0x2d;
pub const JSET_K: u16 = 0x45;
pub const RET_K: u16 = 0x06;
/// Ancillary loads: the packet type and the device's hardware type.
pub const SKF_AD_PKTTYPE: u32 = 0xffff_f000 + 4;
pub const SKF_AD_HATYPE: u32 = 0xffff_f000 + 28;

/// A place in the program, placed once with [`Asm::place`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Where a conditional jump goes when its test is true or false.
#[derive(Debug, Clone, Copy)]
pub enum To {
    /// The next instruction.
    Next,
    Label(Label),
}

struct Ins {
    code: u16,
    k: u32,
    jt: To,
    jf: To,
}

/// A program under construction.
#[derive(Default)]
pub struct Asm {
    code: Vec<Ins>,
    /// Each label's instruction index, once placed.
    labels: Vec<Option<usize>>,
}

impl Asm {
    /// A new label, to be placed later.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Places `label` at the next instruction pushed.
    pub fn place(&mut self, label: Label) {
        self.labels[label.0] = Some(self.code.len());
    }

    /// An instruction that does not jump.
    pub fn op(&mut self, code: u16, k: u32) {
        self.code.push(Ins {
            code,
            k,
            jt: To::Next,
            jf: To::Next,
        });
    }

    /// A conditional jump.
    pub fn jump(&mut self, code: u16, k: u32, jt: To, jf: To) {
        self.code.push(Ins { code, k, jt, jf });
    }

    /// The program, every jump resolved.
    pub fn finish(self) -> io::Result<Vec<libc::sock_filter>> {
        let resolve = |at: usize, to: To| -> io::Result<usize> {
            let target = match to {
                To::Next => return Ok(0),
                To::Label(label) => self.labels[label.0].ok_or_else(|| {
                    io::Error::other(format!("BPF label {} never placed", label.0))
                })?,
            };
            target
                .checked_sub(at + 1)
                .ok_or_else(|| io::Error::other(format!("BPF jump back from {at} to {target}")))
        };
        let short = |at: usize, offset: usize| -> io::Result<u8> {
            u8::try_from(offset).map_err(|_| {
                io::Error::other(format!("BPF jump at {at} is {offset} long (max 255)"))
            })
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, ins)| {
                Ok(libc::sock_filter {
                    code: ins.code,
                    jt: short(at, resolve(at, ins.jt)?)?,
                    jf: short(at, resolve(at, ins.jf)?)?,
                    k: ins.k,
                })
            })
            .collect()
    }
}

/// Runs `program` over `packet` as the kernel would (only the opcodes
/// above): the number of bytes kept, 0 for dropped. A load past the end
/// of the packet drops it, as in the kernel.
#[cfg(test)]
pub fn run(program: &[libc::sock_filter], packet: &[u8], pkttype: u32, hatype: u32) -> u32 {
    let (mut a, mut x, mut pc, mut mem) = (0u32, 0u32, 0usize, [0u32; 16]);
    let byte = |at: u32| packet.get(at as usize).map(|b| u32::from(*b));
    let half = |at: u32| Some(byte(at)? << 8 | byte(at + 1)?);
    loop {
        let i = program[pc];
        pc += 1;
        let jump = |taken: bool| if taken { i.jt } else { i.jf } as usize;
        let loaded = match i.code {
            LD_W_ABS if i.k == SKF_AD_PKTTYPE => Some(pkttype),
            LD_W_ABS if i.k == SKF_AD_HATYPE => Some(hatype),
            LD_H_ABS => half(i.k),
            LD_B_ABS => byte(i.k),
            LD_H_IND => half(x + i.k),
            LD_B_IND => byte(x + i.k),
            _ => None,
        };
        match i.code {
            LD_W_ABS | LD_H_ABS | LD_B_ABS | LD_H_IND | LD_B_IND => match loaded {
                Some(value) => a = value,
                None => return 0,
            },
            LDX_B_MSH => match byte(i.k) {
                Some(value) => x = (value & 0x0f) * 4,
                None => return 0,
            },
            LD_MEM => a = mem[i.k as usize],
            LDX_MEM => x = mem[i.k as usize],
            LDX_IMM => x = i.k,
            ST => mem[i.k as usize] = a,
            ALU_ADD_K => a = a.wrapping_add(i.k),
            ALU_ADD_X => a = a.wrapping_add(x),
            ALU_AND_K => a &= i.k,
            ALU_LSH_K => a <<= i.k,
            ALU_RSH_K => a >>= i.k,
            TAX => x = a,
            JA => pc += i.k as usize,
            JEQ_K => pc += jump(a == i.k),
            JGT_X => pc += jump(a > x),
            JSET_K => pc += jump(a & i.k != 0),
            RET_K => return i.k,
            other => panic!("opcode {other:#x} not interpreted"),
        }
    }
}

/// The kernel's check that no path reads a scratch word (`M[k]`) before
/// writing it (net/core/filter.c, `check_load_and_stores`), redone here
/// so a test fails where `SO_ATTACH_FILTER` would say `EINVAL`. Like the
/// kernel it walks the program once in order, merging what each jump
/// carries into its target and what falls through (even past a `ret`)
/// into the next instruction.
#[cfg(test)]
pub fn check_scratch_words(program: &[libc::sock_filter]) -> Result<(), String> {
    let mut masks = vec![u16::MAX; program.len()];
    let mut valid: u16 = 0;
    for (pc, ins) in program.iter().enumerate() {
        valid &= masks[pc];
        match ins.code {
            ST => valid |= 1 << ins.k,
            LD_MEM | LDX_MEM if valid & (1 << ins.k) == 0 => {
                return Err(format!("M[{}] read at {pc} before any write", ins.k))
            }
            JA => {
                masks[pc + 1 + ins.k as usize] &= valid;
                valid = u16::MAX;
            }
            JEQ_K | JGT_X | JSET_K => {
                masks[pc + 1 + usize::from(ins.jt)] &= valid;
                masks[pc + 1 + usize::from(ins.jf)] &= valid;
                valid = u16::MAX;
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scratch_word_read_on_a_path_that_never_wrote_it_is_refused() {
        let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
        // Written on one branch only.
        let bad = [
            op(JEQ_K, 0, 1, 1),
            op(ST, 0, 0, 0),
            op(LD_MEM, 0, 0, 0),
            op(RET_K, 0, 0, 0),
        ];
        assert!(check_scratch_words(&bad).is_err());
        // Falling through a `ret` carries nothing written.
        let past_ret = [
            op(JEQ_K, 0, 2, 1),
            op(ST, 0, 0, 0),
            op(JA, 0, 0, 1),
            op(RET_K, 0, 0, 0),
            op(LD_MEM, 0, 0, 0),
            op(RET_K, 0, 0, 0),
        ];
        assert!(check_scratch_words(&past_ret).is_err());
        let good = [
            op(ST, 0, 0, 0),
            op(JEQ_K, 0, 1, 1),
            op(LD_MEM, 0, 0, 0),
            op(RET_K, 0, 0, 0),
        ];
        assert!(check_scratch_words(&good).is_ok());
    }

    #[test]
    fn labels_resolve_forward_and_bad_jumps_are_refused() {
        let mut asm = Asm::default();
        let (end, skip) = (asm.label(), asm.label());
        asm.jump(JEQ_K, 1, To::Label(skip), To::Label(end));
        asm.jump(JEQ_K, 2, To::Next, To::Label(end));
        asm.place(skip);
        asm.op(RET_K, 7);
        asm.place(end);
        asm.op(RET_K, 0);
        let p = asm.finish().unwrap();
        assert_eq!((p[0].jt, p[0].jf), (1, 2));
        assert_eq!((p[1].jt, p[1].jf), (0, 1));

        let mut far = Asm::default();
        let end = far.label();
        far.jump(JEQ_K, 1, To::Label(end), To::Next);
        for _ in 0..256 {
            far.op(LD_MEM, 0);
        }
        far.place(end);
        far.op(RET_K, 0);
        assert!(far.finish().is_err(), "a 256-long jump cannot be encoded");

        let mut back = Asm::default();
        let start = back.label();
        back.place(start);
        back.jump(JEQ_K, 1, To::Label(start), To::Next);
        assert!(back.finish().is_err());

        let mut unplaced = Asm::default();
        let nowhere = unplaced.label();
        unplaced.jump(JEQ_K, 1, To::Label(nowhere), To::Next);
        assert!(unplaced.finish().is_err());
    }
}
