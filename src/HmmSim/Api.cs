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

public enum Advice { Normal = 0, DontNeed = 4, Free = 8, HugePage = 14, NoHugePage = 15, Collapse = 25 }

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
