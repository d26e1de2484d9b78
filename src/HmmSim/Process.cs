using HmmSim.Kernel;
using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>A user process: one mm and the system calls of shared/API.md. Dispose is exit.</summary>
public sealed class Process : IDisposable
{
    private readonly Machine _machine;
    private bool _exited;

    internal Process(Machine machine, int pid, MmStruct mm)
    {
        _machine = machine;
        Pid = pid;
        Mm = mm;
    }

    public int Pid { get; }
    /// <summary>current->mm: the address space a driver's open() is handed (see Machine.LoadModule).</summary>
    public MmStruct Mm { get; }
    internal Machine Machine => _machine;

    public Errno Mmap(ulong addr, ulong length, Prot prot, MapFlags flags, out ulong mapped, ShmemFile? file = null, ulong offset = 0)
    {
        mapped = 0;
        ThrowIfExited();
        // ksys_mmap_pgoff looks the fd up only without MAP_ANONYMOUS: with it the file is ignored.
        if ((flags & MapFlags.Anonymous) != 0)
            file = null;
        if (file is not null)
        {
            if (file.Machine != _machine)
                throw new ArgumentException("the file belongs to another machine", nameof(file));
            if (file.IsClosed)
                return Errno.EBADF;   // fget of a closed fd
        }
        ulong result = 0;
        var err = Syscall(() => K.Mmap.DoMmap(Mm, addr, length, (K.Prot)prot, (K.MapFlags)flags, file?.Mapping, offset, out result));
        mapped = result;
        return err;
    }

    /// <summary>mmap of an open /dev/hmm_dmirrorN (dmirror_fops_mmap): zeroed kernel pages inserted with
    /// vm_insert_page into a VM_MIXEDMAP mapping.</summary>
    public Errno Mmap(ulong addr, ulong length, Prot prot, MapFlags flags, out ulong mapped, Dmirror device, ulong offset = 0)
    {
        ArgumentNullException.ThrowIfNull(device);
        ThrowIfExited();
        if (device.Machine != _machine)
            throw new ArgumentException("the device file belongs to another machine", nameof(device));
        // MAP_ANONYMOUS: ksys_mmap_pgoff never looks at the fd, so this is an anonymous mapping.
        if ((flags & MapFlags.Anonymous) != 0)
            return Mmap(addr, length, prot, flags, out mapped, file: null, offset);
        ulong result = 0;
        var err = Syscall(() => MmapFile.DoMmapDevice(Mm, addr, length, (K.Prot)prot, (K.MapFlags)flags, offset, device.Device.Fops, out result));
        mapped = result;
        return err;
    }

    public Errno Munmap(ulong addr, ulong length) => Syscall(() => K.Mmap.DoMunmap(Mm, addr, length));
    public Errno Mprotect(ulong addr, ulong length, Prot prot) => Syscall(() => K.Mprotect.DoMprotect(Mm, addr, length, (K.Prot)prot));
    public Errno Madvise(ulong addr, ulong length, Advice advice) => Syscall(() => K.Madvise.DoMadvise(Mm, addr, length, (K.Advice)advice));

    public Errno Mremap(ulong oldAddr, ulong oldSize, ulong newSize, MremapFlags flags, ulong newAddr, out ulong result)
    {
        ulong r = 0;
        var err = Syscall(() => K.Mremap.DoMremap(Mm, oldAddr, oldSize, newSize, (K.MremapFlags)flags, newAddr, out r));
        result = r;
        return err;
    }

    /// <summary>fork(): a child with a copy of this address space (COW for private memory).</summary>
    public Process Fork()
    {
        ThrowIfExited();
        Process child;
        using (_machine.Operation())
        {
            var mm = new MmStruct(_machine.Kernel);
            K.Errno err;
            Mm.MmapLock.EnterWriteLock();
            Mm.WriteProtectSeqBegin();   // copy_page_range's write_protect_seq: GUP-fast pins back off
            try
            {
                err = K.Fork.DupMmap(Mm, mm);
            }
            finally
            {
                Mm.WriteProtectSeqEnd();
                Mm.MmapLock.ExitWriteLock();
            }
            if (err != K.Errno.None)
            {
                mm.Dispose();   // undo the partial copy, as dup_mmap's error path does
                throw new ErrnoException((Errno)err, "fork failed");
            }
            child = _machine.Register(mm);
        }
        _machine.AfterOperation();
        return child;
    }

    public int ReadInt32(ulong addr)
    {
        Span<byte> b = stackalloc byte[4];
        Read(addr, b);
        return BitConverter.ToInt32(b);
    }

    public void WriteInt32(ulong addr, int value)
    {
        Span<byte> b = stackalloc byte[4];
        BitConverter.TryWriteBytes(b, value);
        Write(addr, b);
    }

    public void Read(ulong addr, Span<byte> destination)
    {
        ThrowIfExited();
        using (_machine.Operation())
            UserAccess.Access(Mm, addr, destination, write: false);
        _machine.AfterOperation();
    }

    public void Write(ulong addr, ReadOnlySpan<byte> source)
    {
        ThrowIfExited();
        // The access path copies out of a writable span; the source is only read.
        var copy = source.Length <= 4096 ? stackalloc byte[source.Length] : new byte[source.Length];
        source.CopyTo(copy);
        using (_machine.Operation())
            UserAccess.Access(Mm, addr, copy, write: true);
        _machine.AfterOperation();
    }

    /// <summary>One CPU load or store inside an operation the caller already holds open
    /// (<c>Machine.Operation()</c>), with the DEBUG_VM checker left to the caller: a loop of plain loads
    /// and stores makes no system call, so the checker need not run between them.</summary>
    internal void AccessInOperation(ulong addr, Span<byte> buffer, bool write) => UserAccess.Access(Mm, addr, buffer, write);

    /// <summary>The 64-bit /proc/pid/pagemap entry for <paramref name="addr"/>.</summary>
    public ulong PagemapEntry(ulong addr)
    {
        ThrowIfExited();
        // pagemap_read stops at mm->task_size: past it (or with high bits that are not an address) no entry.
        if (addr >= Mm.Arch.TaskSize)
            return 0;
        using (_machine.Operation())
        {
            Mm.MmapLock.EnterReadLock();
            try
            {
                lock (Mm.PageTableLock)
                    return TaskMmu.PagemapEntry(Mm, addr);
            }
            finally
            {
                Mm.MmapLock.ExitReadLock();
            }
        }
    }

    /// <summary>get_user_pages / pin_user_pages on this process (FOLL_GET or FOLL_PIN in <paramref name="flags"/>).</summary>
    internal long GetUserPages(ulong start, Span<Page> pages, FollFlags flags)
    {
        ThrowIfExited();
        long n;
        using (_machine.Operation())
        {
            Mm.MmapLock.EnterReadLock();
            try
            {
                n = Gup.GetUserPages(Mm, start, pages, flags);
            }
            finally
            {
                Mm.MmapLock.ExitReadLock();
            }
        }
        _machine.AfterOperation();
        return n;
    }

    /// <summary>get_user_pages_fast on this process (the caller's own mm): FOLL_GET is implied and
    /// <paramref name="gupFlags"/> are the caller's (FOLL_WRITE, FOLL_LONGTERM, ...). No mmap_lock
    /// unless part of the range needs the slow path.</summary>
    internal long GetUserPagesFast(ulong start, Span<Page> pages, FollFlags gupFlags) =>
        Fast(start, pages, gupFlags, pin: false);

    /// <summary>pin_user_pages_fast on this process: FOLL_PIN is implied; release with <see cref="Gup.UnpinUserPage"/>.</summary>
    internal long PinUserPagesFast(ulong start, Span<Page> pages, FollFlags gupFlags) =>
        Fast(start, pages, gupFlags, pin: true);

    private long Fast(ulong start, Span<Page> pages, FollFlags gupFlags, bool pin)
    {
        ThrowIfExited();
        long n;
        using (_machine.Operation())
            n = pin ? Gup.PinUserPagesFast(Mm, start, pages, gupFlags) : Gup.GetUserPagesFast(Mm, start, pages, gupFlags);
        _machine.AfterOperation();
        return n;
    }

    /// <summary>An ioctl on /sys/kernel/debug/gup_test (mm/gup_test.c) from this process: GUP over
    /// [addr, addr+size) in calls of <paramref name="nrPagesPerCall"/> pages, then every page put back.
    /// <paramref name="pinnedSize"/> is gup->size on return, the bytes the calls got.</summary>
    internal Errno GupTest(GupTestCmd cmd, ulong addr, ulong size, uint nrPagesPerCall, FollFlags gupFlags, out ulong pinnedSize)
    {
        ThrowIfExited();
        K.Errno err;
        using (_machine.Operation())
            err = K.GupTest.Ioctl(Mm, cmd, addr, size, nrPagesPerCall, gupFlags, out pinnedSize);
        _machine.AfterOperation();
        return (Errno)err;
    }

    /// <summary>The same ioctl as the selftests issue it, one page per call with FOLL_WRITE, through
    /// the user-space names of gup_test.h (<see cref="GupTestRequest"/>).</summary>
    internal Errno GupTest(GupTestRequest request, ulong addr, ulong size, bool longterm, out ulong pinnedSize) =>
        GupTest((GupTestCmd)request, addr, size, 1, FollFlags.Write | (longterm ? FollFlags.Longterm : 0), out pinnedSize);

    /// <summary>open("/dev/hmm_dmirrorN"): like every other call on an exited process,
    /// ObjectDisposedException once the process has exited.</summary>
    public Dmirror OpenDmirror(int unit)
    {
        ThrowIfExited();
        return _machine.OpenDmirror(this, unit);
    }

    private Errno Syscall(Func<K.Errno> body)
    {
        ThrowIfExited();
        K.Errno err;
        using (_machine.Operation())
        {
            Mm.MmapLock.EnterWriteLock();
            try
            {
                err = body();
            }
            finally
            {
                Mm.MmapLock.ExitWriteLock();
            }
        }
        _machine.AfterOperation();
        return (Errno)err;
    }

    private void ThrowIfExited() => ObjectDisposedException.ThrowIf(_exited, this);

    public void Dispose()
    {
        if (_exited)
            return;
        _exited = true;
        using (_machine.Operation())
        {
            Mm.Dispose();
            _machine.Unregister(this);
        }
        _machine.AfterOperation();
    }
}

/// <summary>The gup_test ioctl numbers of mm/gup_test.h, as user space (the selftests) names them.</summary>
internal enum GupTestRequest { GupFastBenchmark = 1, PinFastBenchmark = 2, PinLongtermBenchmark = 3, GupBasicTest = 4, PinBasicTest = 5 }
