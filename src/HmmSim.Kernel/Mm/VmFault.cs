namespace HmmSim.Kernel;

/// <summary>FAULT_FLAG_* (include/linux/mm_types.h).</summary>
[Flags]
internal enum FaultFlags : uint
{
    None = 0,
    Write = 1 << 0,
    MkWrite = 1 << 1,
    AllowRetry = 1 << 2,
    RetryNoWait = 1 << 3,
    Killable = 1 << 4,
    Tried = 1 << 5,
    User = 1 << 6,
    Remote = 1 << 7,
    Instruction = 1 << 8,
    Interruptible = 1 << 9,
    Unshare = 1 << 10,
    Orig_Pte_Valid = 1 << 11,
    VmaLock = 1 << 12,
}

/// <summary>vm_fault_t bits (include/linux/mm_types.h).</summary>
[Flags]
public enum VmFaultResult : uint
{
    None = 0,
    Oom = 0x000001,
    Sigbus = 0x000002,
    Major = 0x000004,
    HwPoison = 0x000010,
    HwPoisonLarge = 0x000020,
    Sigsegv = 0x000040,
    NoPage = 0x000100,
    Locked = 0x000200,
    Retry = 0x000400,
    Fallback = 0x000800,
    DoneCow = 0x001000,
    NeedDsync = 0x002000,
    Completed = 0x004000,
    Error = Oom | Sigbus | Sigsegv | HwPoison | HwPoisonLarge,
}

/// <summary>struct vm_fault: what a fault handler is told. A struct passed by reference through the
/// fault path, so a fault allocates nothing.</summary>
public struct VmFault
{
    internal VmFault(Vma vma, ulong address, FaultFlags flags)
    {
        Vma = vma;
        Address = address;
        Flags = flags;
    }

    public Vma Vma { get; }
    /// <summary>The faulting address, page aligned.</summary>
    public ulong Address { get; }
    internal FaultFlags Flags { get; }
    /// <summary>vmf->page: for a device-private fault, the (locked) device page.</summary>
    public Page Page { get; internal set; }
    /// <summary>The fault is on a PMD entry (vmf->pte is NULL): a device-private THP migrates whole.</summary>
    public bool PmdFault { get; internal set; }
    /// <summary>The PTE value seen when the fault began (vmf->orig_pte).</summary>
    internal ulong OrigPte { get; set; }
}
