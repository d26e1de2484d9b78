namespace HmmSim.Kernel;

// include/uapi/asm-generic/errno-base.h, mman-common.h and mman.h: the numbers user space and
// drivers see. The contract (HmmSim.Errno, HmmSim.Prot …) has the same values; the syscall layer
// converts explicitly at the boundary.

/// <summary>The kernel's error numbers (include/uapi/asm-generic/errno-base.h, errno.h). Exported
/// functions return them as the kernel returns -errno.</summary>
public enum Errno
{
    /// <summary>Success.</summary>
    None = 0,
    /// <summary>Operation not permitted.</summary>
    EPERM = 1,
    /// <summary>No such file or directory.</summary>
    ENOENT = 2,
    /// <summary>No such process.</summary>
    ESRCH = 3,
    /// <summary>Interrupted system call.</summary>
    EINTR = 4,
    /// <summary>I/O error.</summary>
    EIO = 5,
    /// <summary>No such device or address.</summary>
    ENXIO = 6,
    /// <summary>Argument list too long.</summary>
    E2BIG = 7,
    /// <summary>Bad file number.</summary>
    EBADF = 9,
    /// <summary>Try again.</summary>
    EAGAIN = 11,
    /// <summary>Out of memory.</summary>
    ENOMEM = 12,
    /// <summary>Permission denied.</summary>
    EACCES = 13,
    /// <summary>Bad address.</summary>
    EFAULT = 14,
    /// <summary>Device or resource busy.</summary>
    EBUSY = 16,
    /// <summary>File exists.</summary>
    EEXIST = 17,
    /// <summary>No such device.</summary>
    ENODEV = 19,
    /// <summary>Invalid argument.</summary>
    EINVAL = 22,
    /// <summary>File too large.</summary>
    EFBIG = 27,
    /// <summary>No space left on device.</summary>
    ENOSPC = 28,
    /// <summary>Math result not representable.</summary>
    ERANGE = 34,
    /// <summary>Value too large for defined data type.</summary>
    EOVERFLOW = 75,
    /// <summary>Operation not supported.</summary>
    EOPNOTSUPP = 95,
    /// <summary>Memory page has hardware error.</summary>
    EHWPOISON = 133,
}

/// <summary>PROT_* (mman-common.h).</summary>
[Flags]
internal enum Prot { None = 0, Read = 1, Write = 2, Exec = 4 }

/// <summary>MAP_* (mman-common.h, mman.h).</summary>
[Flags]
internal enum MapFlags
{
    None = 0, Shared = 0x01, Private = 0x02, Fixed = 0x10, Anonymous = 0x20,
    Populate = 0x8000, Hugetlb = 0x40000, FixedNoReplace = 0x100000,
}

/// <summary>MADV_* (mman-common.h).</summary>
internal enum Advice { Normal = 0, Random = 1, Sequential = 2, WillNeed = 3, DontNeed = 4, Free = 8, HugePage = 14, NoHugePage = 15, Collapse = 25 }

/// <summary>MREMAP_* (mman.h).</summary>
[Flags]
internal enum MremapFlags { None = 0, MayMove = 1, Fixed = 2, DontUnmap = 4 }
