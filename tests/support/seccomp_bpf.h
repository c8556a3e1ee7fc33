// A classic-BPF interpreter for seccomp programs: runs a program over one seccomp_data as the
// kernel does (the subset seccomp's checker accepts: loads of the 32-bit words of seccomp_data,
// immediates, scratch memory, ALU, jumps, returns), so that tests can evaluate the real compiled
// policy for any syscall number and arguments without loading it. It also reports whether the
// path taken read the arguments or the instruction pointer: a verdict reached without reading
// them holds for every argument value.
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace packvisor::testing {

struct BpfVerdict {
  bool valid = false;  // false: the program is malformed for this input (error says why)
  std::string error;
  uint32_t ret = 0;        // the SECCOMP_RET_* value returned
  bool read_args = false;  // the path loaded an argument or the instruction pointer
};

inline BpfVerdict RunSeccompBpf(const std::vector<sock_filter>& program, const seccomp_data& data) {
  BpfVerdict verdict;
  uint32_t a = 0, x = 0;
  uint32_t mem[BPF_MEMWORDS] = {};
  const auto* words = reinterpret_cast<const uint8_t*>(&data);
  auto fail = [&](const std::string& why, size_t pc) {
    verdict.valid = false;
    verdict.error = why + " at instruction " + std::to_string(pc);
    return verdict;
  };
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const sock_filter& insn = program[pc];
    const uint32_t k = insn.k;
    switch (BPF_CLASS(insn.code)) {
      case BPF_LD:
      case BPF_LDX: {
        uint32_t value = 0;
        switch (BPF_MODE(insn.code)) {
          case BPF_ABS:
            if (BPF_CLASS(insn.code) != BPF_LD || BPF_SIZE(insn.code) != BPF_W || k % 4 != 0 ||
                k + 4 > sizeof(seccomp_data)) {
              return fail("bad load", pc);
            }
            if (k >= offsetof(seccomp_data, instruction_pointer)) verdict.read_args = true;
            __builtin_memcpy(&value, words + k, 4);
            break;
          case BPF_IMM:
            value = k;
            break;
          case BPF_MEM:
            if (k >= BPF_MEMWORDS) return fail("bad scratch slot", pc);
            value = mem[k];
            break;
          case BPF_LEN:
            value = sizeof(seccomp_data);
            break;
          default:
            return fail("unsupported load mode", pc);
        }
        (BPF_CLASS(insn.code) == BPF_LD ? a : x) = value;
        break;
      }
      case BPF_ST:
      case BPF_STX:
        if (k >= BPF_MEMWORDS) return fail("bad scratch slot", pc);
        mem[k] = BPF_CLASS(insn.code) == BPF_ST ? a : x;
        break;
      case BPF_ALU: {
        const uint32_t operand = BPF_SRC(insn.code) == BPF_X ? x : k;
        switch (BPF_OP(insn.code)) {
          case BPF_ADD:
            a += operand;
            break;
          case BPF_SUB:
            a -= operand;
            break;
          case BPF_MUL:
            a *= operand;
            break;
          case BPF_DIV:
            if (operand == 0) return fail("division by zero", pc);
            a /= operand;
            break;
          case BPF_MOD:
            if (operand == 0) return fail("division by zero", pc);
            a %= operand;
            break;
          case BPF_OR:
            a |= operand;
            break;
          case BPF_AND:
            a &= operand;
            break;
          case BPF_XOR:
            a ^= operand;
            break;
          case BPF_LSH:
            a = operand >= 32 ? 0 : a << operand;
            break;
          case BPF_RSH:
            a = operand >= 32 ? 0 : a >> operand;
            break;
          case BPF_NEG:
            a = 0u - a;
            break;
          default:
            return fail("unsupported ALU op", pc);
        }
        break;
      }
      case BPF_JMP: {
        size_t target;
        if (BPF_OP(insn.code) == BPF_JA) {
          target = pc + 1 + k;
        } else {
          const uint32_t operand = BPF_SRC(insn.code) == BPF_X ? x : k;
          bool taken;
          switch (BPF_OP(insn.code)) {
            case BPF_JEQ:
              taken = a == operand;
              break;
            case BPF_JGT:
              taken = a > operand;
              break;
            case BPF_JGE:
              taken = a >= operand;
              break;
            case BPF_JSET:
              taken = (a & operand) != 0;
              break;
            default:
              return fail("unsupported jump", pc);
          }
          target = pc + 1 + (taken ? insn.jt : insn.jf);
        }
        if (target >= program.size()) return fail("jump out of the program", pc);
        pc = target - 1;  // the loop's ++pc lands on target
        break;
      }
      case BPF_RET:
        verdict.valid = true;
        verdict.ret = BPF_RVAL(insn.code) == BPF_A ? a : k;
        return verdict;
      case BPF_MISC:
        if (BPF_MISCOP(insn.code) == BPF_TAX) {
          x = a;
        } else {
          a = x;
        }
        break;
      default:
        return fail("unsupported instruction class", pc);
    }
  }
  return fail("fell off the end", program.size());
}

}  // namespace packvisor::testing
