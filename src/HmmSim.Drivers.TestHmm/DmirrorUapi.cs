namespace HmmSim.Drivers.TestHmm;

// lib/test_hmm_uapi.h, with the kernel's values.

/// <summary>HMM_DMIRROR_PROT_*: one SNAPSHOT byte per page.</summary>
internal enum DmirrorProt : byte
{
    None = 0x00, Read = 0x01, Write = 0x02, Pmd = 0x04, Pud = 0x08, Zero = 0x10,
    DevPrivateLocal = 0x20, DevPrivateRemote = 0x30, DevCoherentLocal = 0x40, DevCoherentRemote = 0x50,
    Error = 0xFF,
}

/// <summary>HMM_DMIRROR_FLAG_*. AllowP2P is HmmSim's addition: this open file's faults ask
/// hmm_range_fault for a P2P alias of another device's private page (HMM_PFN_ALLOW_P2P) instead of
/// migrating it, and fall back to migration when the alias cannot be DMA-mapped.</summary>
[Flags]
internal enum DmirrorFlags : ulong { None = 0, FailAlloc = 1, AllowP2P = 2 }

/// <summary>struct hmm_dmirror_cmd: the ioctl argument (cmd.ptr is passed beside it as a span).</summary>
internal struct HmmDmirrorCmd
{
    public ulong Addr;
    public ulong Npages;
    public ulong Cpages;
    public ulong Faults;
}

/// <summary>HMM_DMIRROR_* ioctl commands.</summary>
internal enum HmmDmirrorIoctl { Read, Write, MigrateToDev, MigrateToSys, Snapshot, Exclusive, CheckExclusive, Release, Flags }

/// <summary>HMM_DMIRROR_MEMORY_DEVICE_*.</summary>
internal enum DmirrorMemoryType { DevicePrivate = 1, DeviceCoherent = 2 }
