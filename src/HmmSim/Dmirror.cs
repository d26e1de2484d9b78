using System.Runtime.InteropServices;
using HmmSim.Drivers.TestHmm;
using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>An open /dev/hmm_dmirrorN: the ioctl surface of lib/test_hmm.c. Each method is one ioctl
/// with cmd.addr = addr, cmd.npages = npages and cmd.ptr = the span; the driver (the
/// HmmSim.Drivers.TestHmm module) does the work through the kernel's exported API. Dispose is close().</summary>
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
    internal DmirrorFile File { get; }
    internal DmirrorDevice Device => File.Device;
    /// <summary>The unit N of /dev/hmm_dmirrorN.</summary>
    public int Unit => File.Unit;

    /// <summary>HMM_DMIRROR_READ: copy <paramref name="npages"/> pages at <paramref name="addr"/> through
    /// the device's mirror into <paramref name="mirror"/>, faulting missing pages in with hmm_range_fault.</summary>
    public DmirrorResult Read(ulong addr, ulong npages, Span<byte> mirror) => Ioctl(HmmDmirrorIoctl.Read, addr, npages, mirror);

    /// <summary>HMM_DMIRROR_WRITE: write <paramref name="mirror"/> through the device's mirror (write faults first).</summary>
    public DmirrorResult Write(ulong addr, ulong npages, ReadOnlySpan<byte> mirror)
    {
        // The driver only reads the user buffer (copy_from_user, page by page), so the caller's span is
        // passed as it is rather than copied whole.
        var user = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(mirror), mirror.Length);
        return Ioctl(HmmDmirrorIoctl.Write, addr, npages, user);
    }

    /// <summary>HMM_DMIRROR_MIGRATE_TO_DEV: migrate the range to device memory with migrate_vma and return
    /// what the device now holds in <paramref name="mirror"/>.</summary>
    public DmirrorResult MigrateToDevice(ulong addr, ulong npages, Span<byte> mirror) => Ioctl(HmmDmirrorIoctl.MigrateToDev, addr, npages, mirror);

    /// <summary>HMM_DMIRROR_MIGRATE_TO_SYS: migrate this device's pages in the range back to system memory.</summary>
    public DmirrorResult MigrateToSystem(ulong addr, ulong npages) => Ioctl(HmmDmirrorIoctl.MigrateToSys, addr, npages, default);

    /// <summary>HMM_DMIRROR_SNAPSHOT: one <see cref="DmirrorProt"/> byte per page, from hmm_range_fault without faulting.</summary>
    public DmirrorResult Snapshot(ulong addr, ulong npages, Span<byte> protections) => Ioctl(HmmDmirrorIoctl.Snapshot, addr, npages, protections);

    /// <summary>HMM_DMIRROR_EXCLUSIVE: make every page device-exclusive (make_device_exclusive) and read it.</summary>
    public DmirrorResult Exclusive(ulong addr, ulong npages, Span<byte> mirror) => Ioctl(HmmDmirrorIoctl.Exclusive, addr, npages, mirror);

    /// <summary>HMM_DMIRROR_CHECK_EXCLUSIVE: EPERM if the mirror still maps any page of the range atomically.</summary>
    public DmirrorResult CheckExclusive(ulong addr, ulong npages) => Ioctl(HmmDmirrorIoctl.CheckExclusive, addr, npages, default);

    /// <summary>HMM_DMIRROR_RELEASE (issued with cmd.addr 0 and cmd.npages 1, which pass the prologue):
    /// evict and remove all of the device's memory.</summary>
    public DmirrorResult Release() => Ioctl(HmmDmirrorIoctl.Release, 0, 1, default);

    /// <summary>HMM_DMIRROR_FLAGS: cmd.npages carries the flags, so None fails the prologue with EINVAL as in the kernel.</summary>
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
