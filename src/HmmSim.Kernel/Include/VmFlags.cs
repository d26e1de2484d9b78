namespace HmmSim.Kernel;

/// <summary>vm_area_struct.vm_flags, with the kernel's bit values (include/linux/mm.h).</summary>
[Flags]
public enum VmFlags : ulong
{
    None = 0,
    Read = 0x1, Write = 0x2, Exec = 0x4, Shared = 0x8,
    MayRead = 0x10, MayWrite = 0x20, MayExec = 0x40, MayShare = 0x80,
    GrowsDown = 0x100, UffdMissing = 0x200, PfnMap = 0x400, Locked = 0x2000, Io = 0x4000,
    SeqRead = 0x8000, RandRead = 0x10000, DontCopy = 0x20000, DontExpand = 0x40000,
    LockOnFault = 0x80000, Account = 0x100000, NoReserve = 0x200000, Hugetlb = 0x400000,
    Sync = 0x800000, WipeOnFork = 0x2000000, DontDump = 0x4000000, SoftDirty = 0x8000000,
    MixedMap = 0x10000000, HugePage = 0x20000000, NoHugePage = 0x40000000, Mergeable = 0x80000000,
    AccessFlags = Read | Write | Exec,
}
