using System.Runtime.InteropServices;
using HmmSim.Kernel;
using K = HmmSim.Kernel;

namespace HmmSim;

/// <summary>A user process: one mm and the system calls of shared/API.md. Dispose is exit. System calls
/// return an <see cref="Errno"/> as the kernel returns -errno; CPU loads and stores (Read/Write) raise
/// signals as exceptions. Members may be called from several threads: each runs under the machine's
/// operation lock and takes mmap_lock as the kernel does.</summary>
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

    /// <summary>The process id, unique on this machine (1, 2, … in creation order).</summary>
    public int Pid { get; }
    /// <summary>current->mm: the address space a driver's open() is handed (see Machine.LoadModule).</summary>
    public MmStruct Mm { get; }
    internal Machine Machine => _machine;

    /// <summary>mmap(2): map <paramref name="length"/> bytes (rounded up to pages; to 2 MiB for MAP_HUGETLB)
    /// of anonymous memory, or of <paramref name="file"/> from byte <paramref name="offset"/>, at
    /// <paramref name="addr"/> (a hint unless MAP_FIXED/MAP_FIXED_NOREPLACE; 0 lets the kernel choose,
    /// 2 MiB aligned for private anonymous multiples of 2 MiB so THPs can back them). Returns
    /// <see cref="Errno.None"/> with the start in <paramref name="mapped"/>, or EINVAL (no or both of
    /// MAP_SHARED/MAP_PRIVATE, length 0, unaligned offset, MAP_ANONYMOUS with a file, MAP_HUGETLB with a
    /// file or at an unaligned fixed address), EBADF (neither anonymous nor a file), ENOMEM (no room,
    /// too many mappings), EEXIST (MAP_FIXED_NOREPLACE over a mapping), EOVERFLOW (offset + length).</summary>
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

    /// <summary>munmap(2): remove every mapping in [addr, addr + length) (length rounded up to pages),
    /// freeing anonymous and device-private pages no one else maps; holes are fine. EINVAL for an unaligned
    /// addr, length 0, or a range that would split a hugetlb page.</summary>
    public Errno Munmap(ulong addr, ulong length) => Syscall(() => K.Mmap.DoMunmap(Mm, addr, length));
    /// <summary>mprotect(2): change the access of [addr, addr + length). EINVAL for an unaligned addr, an
    /// unknown prot bit or a hugetlb range not on 2 MiB boundaries; ENOMEM when part of the range is
    /// unmapped; EACCES when the mapping may not get that access (VM_MAY*). Length 0 succeeds.</summary>
    public Errno Mprotect(ulong addr, ulong length, Prot prot) => Syscall(() => K.Mprotect.DoMprotect(Mm, addr, length, (K.Prot)prot));
    /// <summary>madvise(2) with <paramref name="advice"/> over [addr, addr + length). EINVAL for an
    /// unknown advice, an unaligned addr, an overflowing range, or advice the mapping does not support
    /// (MADV_FREE on shared memory, MADV_COLLAPSE where THPs cannot go). Length 0 succeeds.</summary>
    public Errno Madvise(ulong addr, ulong length, Advice advice) => Syscall(() => K.Madvise.DoMadvise(Mm, addr, length, (K.Advice)advice));

    /// <summary>mremap(2): resize the mapping at <paramref name="oldAddr"/> from <paramref name="oldSize"/>
    /// to <paramref name="newSize"/> bytes, moving it (page tables and all, no copy) if
    /// <paramref name="flags"/> allow; <paramref name="newAddr"/> is used with MREMAP_FIXED. Returns the
    /// mapping's new start in <paramref name="result"/>. EINVAL for bad flag combinations, unaligned
    /// addresses, a new size of 0, hugetlb resizing or overlapping fixed ranges; EFAULT when the old range
    /// is not inside one mapping (or a VM_DONTEXPAND one would grow); ENOMEM when it cannot grow in place
    /// without MREMAP_MAYMOVE or there is no room.</summary>
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

    /// <summary>A 4-byte load at <paramref name="addr"/> (little-endian), as <see cref="Read"/>.</summary>
    public int ReadInt32(ulong addr)
    {
        Span<byte> b = stackalloc byte[4];
        Read(addr, b);
        return BitConverter.ToInt32(b);
    }

    /// <summary>A 4-byte store of <paramref name="value"/> at <paramref name="addr"/> (little-endian), as <see cref="Write"/>.</summary>
    public void WriteInt32(ulong addr, int value)
    {
        Span<byte> b = stackalloc byte[4];
        BitConverter.TryWriteBytes(b, value);
        Write(addr, b);
    }

    /// <summary>CPU loads of destination.Length bytes at <paramref name="addr"/>, faulting pages in as
    /// the MMU would (a device-private page migrates back through its driver's migrate_to_ram). Throws
    /// <see cref="SegmentationFaultException"/> for an address with no readable mapping and
    /// <see cref="BusErrorException"/> for SIGBUS; nothing is returned as an errno because a load makes
    /// no system call.</summary>
    public void Read(ulong addr, Span<byte> destination)
    {
        ThrowIfExited();
        using (_machine.Operation())
            UserAccess.Access(Mm, addr, destination, write: false);
        _machine.AfterOperation(Mm, addr, (ulong)destination.Length);
    }

    /// <summary>CPU stores of <paramref name="source"/> at <paramref name="addr"/>: write faults, COW and
    /// device-private migration as the MMU would cause them. Throws <see cref="SegmentationFaultException"/>
    /// for an address with no writable mapping and <see cref="BusErrorException"/> for SIGBUS.</summary>
    public void Write(ulong addr, ReadOnlySpan<byte> source)
    {
        ThrowIfExited();
        // The access path takes a writable span but only reads it for a store, so the source goes in as it
        // is: a whole-size copy per call was garbage the size of the write (RSS grew with every round).
        var user = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(source), source.Length);
        using (_machine.Operation())
            UserAccess.Access(Mm, addr, user, write: true);
        _machine.AfterOperation(Mm, addr, (ulong)source.Length);
    }

    /// <summary>One CPU load or store inside an operation the caller already holds open
    /// (<c>Machine.Operation()</c>), with the DEBUG_VM checker left to the caller: a loop of plain loads
    /// and stores makes no system call, so the checker need not run between them.</summary>
    internal void AccessInOperation(ulong addr, Span<byte> buffer, bool write) => UserAccess.Access(Mm, addr, buffer, write);

    /// <summary>The /proc/pid/pagemap entry for <paramref name="addr"/>, decoded (see
    /// <see cref="HmmSim.PagemapEntry"/>); the raw value is <see cref="PagemapEntry(ulong)"/>.</summary>
    public HmmSim.PagemapEntry Pagemap(ulong addr) => new(PagemapEntry(addr));

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

    /// <summary>The page-table state of [<paramref name="addr"/>, +<paramref name="length"/>), one entry
    /// per page: PTE or PMD level, present or the non-present entry's kind, PFN or device-private offset,
    /// and the entry's flags, all decoded by the kernel's pte/pmd and softleaf helpers (K.PtDump).
    /// Reads only: a huge PMD is reported whole, never split.</summary>
    internal IReadOnlyList<PageTableDumpEntry> DumpPageTables(ulong addr, ulong length)
    {
        ThrowIfExited();
        if ((addr & (Arch.PageSize - 1)) != 0 || length == 0 || addr >= Mm.Arch.TaskSize || length > Mm.Arch.TaskSize - addr)
            throw new ArgumentException($"[0x{addr:x}, +0x{length:x}) is not a page-aligned, non-empty user range", nameof(addr));
        ulong end = addr + ((length + Arch.PageSize - 1) & ~(Arch.PageSize - 1));
        List<K.PtDumpEntry> raw;
        using (_machine.Operation())
        {
            Mm.MmapLock.EnterReadLock();
            try
            {
                // As pagemap_read: the page-table lock keeps the entries still while they are read.
                lock (Mm.PageTableLock)
                    raw = K.PtDump.Walk(Mm, addr, end);
            }
            finally
            {
                Mm.MmapLock.ExitReadLock();
            }
        }
        var result = new PageTableDumpEntry[raw.Count];
        for (int i = 0; i < raw.Count; i++)
            result[i] = PageTableDumpEntry.From(raw[i]);
        return result;
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

    /// <summary>open("/dev/hmm_dmirrorN"): a dmirror file mirroring this process's address space through
    /// device <paramref name="unit"/>. Throws <see cref="ErrnoException"/> with ENOENT when that unit did
    /// not probe (<see cref="Machine.HasDmirror"/>), and ObjectDisposedException, like every other call,
    /// once the process has exited. Dispose the handle to close it.</summary>
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

    /// <summary>exit(): tear the address space down (exit_mmap: every mapping removed, the driver
    /// notifiers told with MMU_NOTIFY_RELEASE). Idempotent; other members then throw
    /// <see cref="ObjectDisposedException"/>.</summary>
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
