using System.Runtime.InteropServices;
using HmmSim.Drivers.TestHmm;
using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>An open /dev/hmm_dmirrorN: the ioctl surface of lib/test_hmm.c. Each method is one ioctl
/// with cmd.addr = addr, cmd.npages = npages and cmd.ptr = the span; the driver (the
/// HmmSim.Drivers.TestHmm module) does the work through the kernel's exported API. Dispose is close().
/// Every ioctl first checks the range as dmirror_fops_unlocked_ioctl does: cmd.addr must be
/// page aligned and addr + npages pages must not overflow (npages 0 fails too), else EINVAL. On failure
/// the result's CPages and Faults are 0 (the kernel copies cmd back only on success). The ioctls
/// of one handle may be issued from several threads; each runs under the machine's operation lock.</summary>
public sealed class Dmirror : IDisposable
{
    private readonly Machine _machine;
    private bool _closed;

    internal Dmirror(Machine machine, Process process, DmirrorFile file)
    {
        _machine = machine;
        Process = process;
        File = file;
    }

    internal Process Process { get; }
    internal Machine Machine => _machine;
    internal DmirrorFile File { get; }
    internal DmirrorDevice Device => File.Device;
    /// <summary>The unit N of /dev/hmm_dmirrorN.</summary>
    public int Unit => File.Unit;

    /// <summary>HMM_DMIRROR_READ (dmirror_read): copy <paramref name="npages"/> pages at <paramref name="addr"/>
    /// through the device's mirror into <paramref name="mirror"/> (at least npages × 4096 bytes), faulting
    /// pages the mirror lacks in with hmm_range_fault (HMM_PFN_REQ_FAULT) first. CPages is the pages copied
    /// (npages); Faults is how many times the mirror had to be faulted (dmirror_fault rounds, 0 if all
    /// pages were mirrored already). EFAULT when <paramref name="mirror"/> is too small or a page cannot be
    /// faulted in (no VMA, PROT_NONE, an exited process); EBUSY when invalidations kept racing; ENOMEM for
    /// a range over 2 GiB.</summary>
    public DmirrorResult Read(ulong addr, ulong npages, Span<byte> mirror) => Ioctl(HmmDmirrorIoctl.Read, addr, npages, mirror);

    /// <summary>HMM_DMIRROR_WRITE (dmirror_write): write npages × 4096 bytes of <paramref name="mirror"/> through
    /// the device's mirror, write-faulting (HMM_PFN_REQ_WRITE: COW broken, read-only mappings refused)
    /// pages the mirror does not hold writable. CPages and Faults as for <see cref="Read"/>. EFAULT when
    /// <paramref name="mirror"/> is too small or a page cannot be write-faulted; EBUSY, ENOMEM as for Read.</summary>
    public DmirrorResult Write(ulong addr, ulong npages, ReadOnlySpan<byte> mirror)
    {
        // The driver only reads the user buffer (copy_from_user, page by page), so the caller's span is
        // passed as it is rather than copied whole.
        var user = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(mirror), mirror.Length);
        return Ioctl(HmmDmirrorIoctl.Write, addr, npages, user);
    }

    /// <summary>HMM_DMIRROR_MIGRATE_TO_DEV (dmirror_migrate_to_device): migrate the system-memory pages of the
    /// range to this device's private (or coherent) memory with migrate_vma (MIGRATE_VMA_SELECT_SYSTEM |
    /// COMPOUND: a 2 MiB-aligned THP moves as one device THP, falling back to 512 small pages), then read
    /// what the mirror holds into <paramref name="mirror"/> (npages × 4096 bytes) for verification. CPages
    /// is the pages read back, so npages on success; Faults is 0. EINVAL when part of the range has no
    /// readable VMA or the process has exited; ENOENT when a page did not end up in the mirror (it could
    /// not be migrated, e.g. pinned); EFAULT when <paramref name="mirror"/> is too small.</summary>
    public DmirrorResult MigrateToDevice(ulong addr, ulong npages, Span<byte> mirror) => Ioctl(HmmDmirrorIoctl.MigrateToDev, addr, npages, mirror);

    /// <summary>HMM_DMIRROR_MIGRATE_TO_SYS (dmirror_migrate_to_system): migrate this device's pages in the range
    /// back to system memory with migrate_vma (MIGRATE_VMA_SELECT_DEVICE_PRIVATE or _COHERENT | COMPOUND),
    /// as a CPU fault would but without one. CPages counts migrated source entries, so a device THP moved
    /// whole counts once, not 512 times (docs/fidelity.md); pages of other devices or already in system
    /// memory are not counted. Faults is 0. EINVAL when part of the range has no readable VMA or the process
    /// has exited; ENOMEM when a system page could not be allocated (HMM_DMIRROR_FLAG_FAIL_ALLOC).</summary>
    public DmirrorResult MigrateToSystem(ulong addr, ulong npages) => Ioctl(HmmDmirrorIoctl.MigrateToSys, addr, npages, default);

    /// <summary>HMM_DMIRROR_SNAPSHOT (dmirror_snapshot): what the CPU page tables hold for each page, as one
    /// <see cref="DmirrorProt"/> byte per page in <paramref name="protections"/> (at least npages bytes),
    /// from hmm_range_fault without faulting (nothing is allocated, migrated or mirrored). CPages is npages;
    /// Faults is 0. EFAULT when <paramref name="protections"/> is too small; EINVAL when the process has exited.</summary>
    public DmirrorResult Snapshot(ulong addr, ulong npages, Span<byte> protections) => Ioctl(HmmDmirrorIoctl.Snapshot, addr, npages, protections);

    /// <summary>HMM_DMIRROR_EXCLUSIVE (dmirror_exclusive): make every page of the range device-exclusive with
    /// make_device_exclusive (the CPU mapping becomes a device-exclusive entry; the next CPU access takes
    /// it back and the mirror loses its atomic mapping), map it atomically in the mirror, and read the
    /// data into <paramref name="mirror"/> (npages × 4096 bytes). CPages is the pages read (npages); Faults
    /// is 0. make_device_exclusive's errno stops it: EOPNOTSUPP for a page that is not anonymous (shmem,
    /// hugetlb), EFAULT for one that cannot be faulted in writable, EBUSY when it kept racing; also EFAULT
    /// when <paramref name="mirror"/> is too small, EINVAL when the process has exited.</summary>
    public DmirrorResult Exclusive(ulong addr, ulong npages, Span<byte> mirror) => Ioctl(HmmDmirrorIoctl.Exclusive, addr, npages, mirror);

    /// <summary>HMM_DMIRROR_CHECK_EXCLUSIVE (dmirror_check_atomic): EPERM if the mirror still maps any page of
    /// the range atomically, i.e. no CPU access has revoked the exclusive access yet; None otherwise.
    /// CPages and Faults are 0.</summary>
    public DmirrorResult CheckExclusive(ulong addr, ulong npages) => Ioctl(HmmDmirrorIoctl.CheckExclusive, addr, npages, default);

    /// <summary>HMM_DMIRROR_RELEASE (issued with cmd.addr 0 and cmd.npages 1, which pass the prologue):
    /// evict all of the device's memory back to system memory (migrate_device_range, for every process)
    /// and remove its chunks (memunmap_pages). Always None; CPages and Faults are 0.</summary>
    public DmirrorResult Release() => Ioctl(HmmDmirrorIoctl.Release, 0, 1, default);

    /// <summary>HMM_DMIRROR_FLAGS: set this open file's <see cref="DmirrorFlags"/> (replacing the previous ones).
    /// cmd.npages carries the flags, so <see cref="DmirrorFlags.None"/> fails the prologue with EINVAL as in the kernel.</summary>
    public DmirrorResult SetFlags(DmirrorFlags flags) => Ioctl(HmmDmirrorIoctl.Flags, 0, (ulong)flags, default);

    private DmirrorResult Ioctl(HmmDmirrorIoctl command, ulong addr, ulong npages, Span<byte> ptr)
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        var cmd = new HmmDmirrorCmd { Addr = addr, Npages = npages };
        K.Errno err;
        using (_machine.Operation())
            err = File.Ioctl(command, ref cmd, ptr);
        _machine.AfterOperation();
        return err == K.Errno.None ? new(Errno.None, cmd.Cpages, cmd.Faults) : new((Errno)err, 0, 0);
    }

    /// <summary>close(): the driver's release evicts the device's memory and drops the mirror.</summary>
    public void Dispose()
    {
        if (_closed)
            return;
        _closed = true;
        using (_machine.Operation())
            File.Dispose();
        _machine.AfterOperation();
    }
}
