namespace HmmSim;

// The enums and records of shared/API.md. Values with a Linux counterpart are the Linux values.

public enum Errno
{
    None = 0, EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, EBADF = 9,
    EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19,
    EINVAL = 22, EFBIG = 27, ENOSPC = 28, ERANGE = 34, EOVERFLOW = 75, EOPNOTSUPP = 95, EHWPOISON = 133,
}

[Flags]
public enum Prot { None = 0, Read = 1, Write = 2, Exec = 4 }

[Flags]
public enum MapFlags
{
    None = 0, Shared = 0x01, Private = 0x02, Fixed = 0x10, Anonymous = 0x20,
    Populate = 0x8000, Hugetlb = 0x40000, FixedNoReplace = 0x100000,
}

public enum Advice { Normal = 0, Random = 1, Sequential = 2, WillNeed = 3, DontNeed = 4, Free = 8, HugePage = 14, NoHugePage = 15, Collapse = 25 }

[Flags]
public enum MremapFlags { None = 0, MayMove = 1, Fixed = 2, DontUnmap = 4 }

public enum Architecture { X86_64, Arm64 }

public enum DevicePrivateDesign { PhysicalAddressSpace, DeviceAddressSpace }

public readonly record struct PhysicalRange(ulong Start, ulong Length)
{
    public ulong End => Start + Length;
}

/// <summary>Where the dmirror units sit on PCI: behind one PCIe switch (peer-to-peer DMA works),
/// or on separate root ports of a host bridge that is not on the P2P whitelist.</summary>
public enum PciTopology { CommonSwitch, SeparateRootPorts }

/// <summary>/sys/kernel/mm/transparent_hugepage/enabled.</summary>
public enum ThpPolicy { Always, Madvise, Never }

/// <summary>HMM_DMIRROR_PROT_* (lib/test_hmm_uapi.h): one SNAPSHOT byte per page.</summary>
public enum DmirrorProt : byte
{
    /// <summary>Not mapped (or an entry the device cannot use).</summary>
    None = 0x00,
    /// <summary>Mapped readable.</summary>
    Read = 0x01,
    /// <summary>Mapped writable.</summary>
    Write = 0x02,
    /// <summary>Mapped by a PMD (a 2 MiB entry).</summary>
    Pmd = 0x04,
    /// <summary>Mapped by a PUD (a 1 GiB entry).</summary>
    Pud = 0x08,
    /// <summary>The shared zero page.</summary>
    Zero = 0x10,
    /// <summary>A device-private page of this device.</summary>
    DevPrivateLocal = 0x20,
    /// <summary>A device-private page of another device.</summary>
    DevPrivateRemote = 0x30,
    /// <summary>A device-coherent page of this device.</summary>
    DevCoherentLocal = 0x40,
    /// <summary>A device-coherent page of another device.</summary>
    DevCoherentRemote = 0x50,
    /// <summary>hmm_range_fault reported an error for the page.</summary>
    Error = 0xFF,
}

/// <summary>HMM_DMIRROR_FLAG_*.</summary>
[Flags]
public enum DmirrorFlags : ulong
{
    /// <summary>No flag (HMM_DMIRROR_FLAGS with 0 fails with EINVAL, as in the kernel).</summary>
    None = 0,
    /// <summary>HMM_DMIRROR_FLAG_FAIL_ALLOC: the next device (or system) page allocation fails, once.</summary>
    FailAlloc = 1,
    /// <summary>HmmSim's addition: this open file's faults ask hmm_range_fault for a P2P alias of another
    /// device's private page (HMM_PFN_ALLOW_P2P) instead of migrating it, and fall back to migration
    /// when the alias cannot be DMA-mapped.</summary>
    AllowP2P = 2,
}

/// <summary>The outputs of one ioctl: its errno, and cmd.cpages and cmd.faults (copied back only on success).</summary>
public readonly record struct DmirrorResult(Errno Error, ulong CPages, ulong Faults);
