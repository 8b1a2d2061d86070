"""A classic-BPF evaluator for seccomp filters, to compare two filters by what they do.

runc's filter for one profile is not always the same bytes: the stub it puts in front
of libseccomp's program (ENOSYS for syscalls newer than the profile) lists the
architectures in the order of a Go map.  Two filters are the same filter when they
answer the same for every `seccomp_data` that matters: each architecture's syscall
numbers (x32's too), with the argument values the profile's rules test.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
AUDIT_ARCH_AARCH64 = 0xC00000B7
X32_BIT = 0x40000000


def instructions(data: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack_from("<HBBI", data, i) for i in range(0, len(data), 8)]


def run(prog: list[tuple[int, int, int, int]], nr: int, arch: int,
        args: tuple[int, ...]) -> tuple[int, bool]:
    """The filter's return value for one syscall (seccomp_data as the kernel fills
    it), and whether it read an argument on the way."""
    data = struct.pack("<IIQ6Q", nr, arch, 0, *args)
    read_args = False
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        code, jt, jf, k = prog[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x15:  # jeq #k, the most of any filter
            pc += jt if a == k else jf
        elif code == 0x20:  # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
            read_args = read_args or k >= 16
        elif code == 0x00:  # ld #k
            a = k
        elif code == 0x01:  # ldx #k
            x = k
        elif code == 0x60:  # ld M[k]
            a = mem[k]
        elif code == 0x61:  # ldx M[k]
            x = mem[k]
        elif code == 0x02:  # st M[k]
            mem[k] = a
        elif code == 0x03:  # stx M[k]
            mem[k] = x
        elif code == 0x07:  # tax
            x = a
        elif code == 0x87:  # txa
            a = x
        elif cls == 0x04:  # alu
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x50:
                a &= src
            elif op == 0x40:
                a |= src
            elif op == 0xA0:
                a ^= src
            elif op == 0x00:
                a += src
            elif op == 0x10:
                a -= src
            elif op == 0x60:
                a = a << src if src < 32 else 0
            elif op == 0x70:
                a = a >> src if src < 32 else 0
            else:
                raise ValueError(f"unknown ALU opcode {code:#x}")
            a &= 0xFFFFFFFF
        elif code == 0x05:  # ja
            pc += k
        elif cls == 0x05:  # jmp
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x10:
                taken = a == src
            elif op == 0x20:
                taken = a > src
            elif op == 0x30:
                taken = a >= src
            elif op == 0x40:
                taken = bool(a & src)
            else:
                raise ValueError(f"unknown jump opcode {code:#x}")
            pc += jt if taken else jf
        elif code == 0x06:  # ret #k
            return k, read_args
        elif code == 0x16:  # ret a
            return a, read_args
        else:
            raise ValueError(f"unknown opcode {code:#x}")


#: first-argument values Docker's profile tests (personality, socket families, clone)
FIRSTS = (1, 8, 38, 39, 40, 41, 0x20000, 0x20008, 0xFFFFFFFF, 0x7E020000, 0x10000000,
          0x00010000, 0x80000000)


def numbers() -> Iterator[tuple[int, int]]:
    """Every syscall number of each architecture (none passes 600 yet) and some past
    the ends, x32's too."""
    for arch in (AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64):
        for nr in [*range(0, 600), 999, 1023, 4095, 0xFFFF, 0x3FFFFFFF]:
            yield nr, arch
            if arch == AUDIT_ARCH_X86_64:
                yield X32_BIT | nr, arch


def differences(one: bytes, other: bytes) -> list[tuple[int, int, int, int, int]]:
    """Where the two filters answer differently: (nr, arch, arg0, one's, other's).  A
    syscall either filter checks an argument of is tried with each of FIRSTS too."""
    p, q = instructions(one), instructions(other)
    found = []
    for nr, arch in numbers():
        todo = [0]
        for first in todo:
            args = (first, 0, 0, 0, 0, 0)
            (r1, read1), (r2, read2) = run(p, nr, arch, args), run(q, nr, arch, args)
            if r1 != r2:
                found.append((nr, arch, first, r1, r2))
            if first == 0 and (read1 or read2):
                todo.extend(FIRSTS)
    return found
