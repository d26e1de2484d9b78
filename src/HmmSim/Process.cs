using System.Runtime.InteropServices;
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
            try
            {
                err = K.Fork.DupMmap(Mm, mm);
            }
            finally
            {
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
        // The access path takes a writable span but only reads it for a store, so the source goes in as it
        // is: a whole-size copy per call was garbage the size of the write (RSS grew with every round).
        var user = MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(source), source.Length);
        using (_machine.Operation())
            UserAccess.Access(Mm, addr, user, write: true);
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


    /// <summary>One ioctl of mm/gup_test.c's /sys/kernel/debug/gup_test on <paramref name="nrPages"/>
    /// pages at <paramref name="addr"/>, FOLL_WRITE set: the pages are taken (got or pinned) and
    /// released again; returns how many were taken, or -errno.</summary>
    internal long GupTest(GupTestCmd cmd, ulong addr, int nrPages, bool longterm = false)
    {
        var flags = FollFlags.Write | (longterm ? FollFlags.Longterm : 0) | cmd switch
        {
            GupTestCmd.GupBasicTest or GupTestCmd.GupFastBenchmark => FollFlags.Get,
            GupTestCmd.PinFastBenchmark => FollFlags.Pin,
            GupTestCmd.PinLongtermBenchmark => FollFlags.Pin | FollFlags.Longterm,
            _ => throw new ArgumentOutOfRangeException(nameof(cmd)),
        };
        var pages = new Page[nrPages];
        long n = GetUserPages(addr, pages, flags);
        using (_machine.Operation())
        {
            for (long i = 0; i < n; i++)
            {
                if ((flags & FollFlags.Pin) != 0)
                    Gup.UnpinUserPage(pages[i]);
                else
                    Gup.PutPage(pages[i]);
            }
        }
        _machine.AfterOperation();
        return n;
    }

    public Dmirror OpenDmirror(int unit) => _machine.OpenDmirror(this, unit);

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

/// <summary>The gup_test ioctl commands (mm/gup_test.h) the HMM selftests use.</summary>
internal enum GupTestCmd { GupFastBenchmark, PinFastBenchmark, PinLongtermBenchmark, GupBasicTest }
