using System.Reflection;
using System.Runtime.InteropServices;

namespace HmmSim.Selftests;

/// <summary>The ioctls of lib/test_hmm_uapi.h, as the selftest names them.</summary>
internal enum HmmDmirrorRequest
{
    Read,           // HMM_DMIRROR_READ
    Write,          // HMM_DMIRROR_WRITE
    MigrateToDev,   // HMM_DMIRROR_MIGRATE_TO_DEV
    MigrateToSys,   // HMM_DMIRROR_MIGRATE_TO_SYS
    Snapshot,       // HMM_DMIRROR_SNAPSHOT
    Exclusive,      // HMM_DMIRROR_EXCLUSIVE
    CheckExclusive, // HMM_DMIRROR_CHECK_EXCLUSIVE
    Release,        // HMM_DMIRROR_RELEASE
    Flags,          // HMM_DMIRROR_FLAGS
}

/// <summary>hmm-tests.c: struct hmm_buffer. <see cref="Ptr"/> is the user address the ioctls get
/// as cmd.addr, <see cref="Mirror"/> the user buffer they get as cmd.ptr.</summary>
internal sealed class HmmBuffer
{
    public ulong Ptr;
    public ulong Size;
    public byte[] Mirror = [];
    public ShmemFile? Fd;
    public ulong CPages;
    public ulong Faults;

    /// <summary>The copy a fork()ed child works on: its own struct and its own malloc'd mirror.</summary>
    public HmmBuffer CloneForChild() => new()
    {
        Ptr = Ptr,
        Size = Size,
        Mirror = (byte[])Mirror.Clone(),
        Fd = Fd,
        CPages = CPages,
        Faults = Faults,
    };
}

/// <summary>The FIXTURE(hmm) / FIXTURE(hmm2) of tools/testing/selftests/mm/hmm-tests.c on a fresh
/// machine: one test process with one (hmm) or two (hmm2) open dmirror files, and the file's
/// helpers (hmm_dmirror_cmd, hmm_buffer_free, hmm_create_file, read_pmd_pagesize).</summary>
internal sealed class HmmFixture : IDisposable
{
    public const ulong PageSize = 4096;
    public const int PageShift = 12;
    public const ulong OneKb = 1 << 10;
    public const ulong OneMeg = 1 << 20;
    public const ulong TwoMeg = 1 << 21;
    public const ulong HmmBufferSize = 1024 << 12;
    public const int NTimes = 10;

    // The unit numbers of the C enum (HMM_PRIVATE_DEVICE_ONE, ...).
    public const int HmmPrivateDeviceOne = 0;
    public const int HmmPrivateDeviceTwo = 1;
    public const int HmmCoherenceDeviceOne = 2;
    public const int HmmCoherenceDeviceTwo = 3;

    private bool _disposed;

    /// <summary>The design variants the fixtures of this flow boot their machines with (redesign cases only).</summary>
    internal static readonly AsyncLocal<DesignVariants?> AmbientVariants = new();

    private HmmFixture(DevicePrivateDesign design)
    {
        // Variants apply to the redesign only (today's design refuses them): see SelftestCatalog.RunWith.
        var variants = design == DevicePrivateDesign.DeviceAddressSpace ? AmbientVariants.Value : null;
        Machine = new Machine(new MachineConfig { DevicePrivateDesign = design, Variants = variants ?? new DesignVariants() });
        Self = Machine.CreateProcess();
    }

    public Machine Machine { get; }
    /// <summary>The test process (the harness's forked test child).</summary>
    public Process Self { get; }
    /// <summary>hmm: self->fd; hmm2: self->fd0.</summary>
    public Dmirror Fd { get; private set; } = null!;
    /// <summary>hmm2 only: self->fd1.</summary>
    public Dmirror Fd1 { get; private set; } = null!;
    public int DeviceNumber { get; private set; }
    public int DeviceNumber1 { get; private set; }

    /// <summary>FIXTURE_VARIANT(hmm) and FIXTURE_VARIANT(hmm2).</summary>
    public static IReadOnlyList<string> HmmVariants { get; } = ["hmm_device_private", "hmm_device_coherent"];
    public static IReadOnlyList<string> Hmm2Variants { get; } = ["hmm2_device_private", "hmm2_device_coherent"];

    /// <summary>FIXTURE_SETUP(hmm).</summary>
    public static HmmFixture Hmm(string variant, DevicePrivateDesign design)
    {
        var f = new HmmFixture(design);
        f.DeviceNumber = variant switch
        {
            "hmm_device_private" => HmmPrivateDeviceOne,
            "hmm_device_coherent" => HmmCoherenceDeviceOne,
            _ => throw new ArgumentException($"unknown hmm variant {variant}", nameof(variant)),
        };
        f.Setup(() => f.Fd = f.Self.OpenDmirror(f.DeviceNumber));
        return f;
    }

    /// <summary>FIXTURE_SETUP(hmm2).</summary>
    public static HmmFixture Hmm2(string variant, DevicePrivateDesign design)
    {
        var f = new HmmFixture(design);
        (f.DeviceNumber, f.DeviceNumber1) = variant switch
        {
            "hmm2_device_private" => (HmmPrivateDeviceOne, HmmPrivateDeviceTwo),
            "hmm2_device_coherent" => (HmmCoherenceDeviceOne, HmmCoherenceDeviceTwo),
            _ => throw new ArgumentException($"unknown hmm2 variant {variant}", nameof(variant)),
        };
        f.Setup(() =>
        {
            f.Fd = f.Self.OpenDmirror(f.DeviceNumber);
            f.Fd1 = f.Self.OpenDmirror(f.DeviceNumber1);
        });
        return f;
    }

    /// <summary>Runs the opens of FIXTURE_SETUP; a failed open still shuts the machine down.</summary>
    private void Setup(Action open)
    {
        try
        {
            open();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>hmm_is_coherent_type.</summary>
    public static bool HmmIsCoherentType(int devNum) => devNum >= HmmCoherenceDeviceOne;

    /// <summary>read_pmd_pagesize (vm_util.c): the THP size, 2 MiB on x86-64 with 4 KiB pages.</summary>
    public static ulong ReadPmdPagesize() => 2UL << 20;

    /// <summary>default_huge_page_size (vm_util.c): the model's hugetlb pages are 2 MiB.</summary>
    public static ulong DefaultHugePageSize() => 2UL << 20;

    /// <summary>hugetlb_free_default_pages (hugepage_settings.c): free pages of the default size. The
    /// harness's HUGETLB_SETUP_DEFAULT_PAGES(1) asks for one; the model boots with a pool.</summary>
    public long HugetlbFreeDefaultPages() => Machine.VmStat["hugetlb_pages_free"];

    /// <summary>vm_util.h: PM_SWAP and PAGEMAP_PRESENT of a /proc/self/pagemap entry.</summary>
    public const ulong PmSwap = 1UL << 62;
    public static bool PagemapPresent(ulong entry) => (entry >> 63) != 0;

    /// <summary>pagemap_get_entry (vm_util.c) on /proc/self/pagemap.</summary>
    public static ulong PagemapGetEntry(Process p, ulong addr) => p.PagemapEntry(addr);

    public static ulong Align(ulong x, ulong a) => (x + (a - 1)) & ~(a - 1);

    /// <summary>hmm_dmirror_cmd: cmd.addr = buffer->ptr, cmd.ptr = buffer->mirror, cmd.npages = npages;
    /// retried on EINTR; on success cpages and faults are copied back into the buffer.</summary>
    public static Errno HmmDmirrorCmd(Dmirror fd, HmmDmirrorRequest request, HmmBuffer buffer, ulong npages)
    {
        DmirrorResult r;
        for (; ; )
        {
            ulong addr = Volatile.Read(ref buffer.Ptr);
            r = request switch
            {
                HmmDmirrorRequest.Read => fd.Read(addr, npages, buffer.Mirror),
                HmmDmirrorRequest.Write => fd.Write(addr, npages, buffer.Mirror),
                HmmDmirrorRequest.MigrateToDev => fd.MigrateToDevice(addr, npages, buffer.Mirror),
                HmmDmirrorRequest.MigrateToSys => fd.MigrateToSystem(addr, npages),
                HmmDmirrorRequest.Snapshot => fd.Snapshot(addr, npages, buffer.Mirror),
                HmmDmirrorRequest.Exclusive => fd.Exclusive(addr, npages, buffer.Mirror),
                HmmDmirrorRequest.CheckExclusive => fd.CheckExclusive(addr, npages),
                HmmDmirrorRequest.Release => fd.Release(),
                // HMM_DMIRROR_FLAGS carries the flags in cmd.npages.
                HmmDmirrorRequest.Flags => fd.SetFlags((DmirrorFlags)npages),
                _ => throw new ArgumentOutOfRangeException(nameof(request)),
            };
            if (r.Error == Errno.None)
                break;
            if (r.Error == Errno.EINTR)
                continue;
            return r.Error;
        }
        buffer.CPages = r.CPages;
        buffer.Faults = r.Faults;
        return Errno.None;
    }

    public static Errno HmmMigrateSysToDev(Dmirror fd, HmmBuffer buffer, ulong npages) =>
        HmmDmirrorCmd(fd, HmmDmirrorRequest.MigrateToDev, buffer, npages);

    public static Errno HmmMigrateDevToSys(Dmirror fd, HmmBuffer buffer, ulong npages) =>
        HmmDmirrorCmd(fd, HmmDmirrorRequest.MigrateToSys, buffer, npages);

    /// <summary>The malloc + field setup every test repeats: fd = -1, size, a mirror of
    /// <paramref name="mirrorBytes"/> bytes.</summary>
    public static HmmBuffer NewBuffer(ulong size, ulong mirrorBytes) =>
        new() { Size = size, Mirror = new byte[mirrorBytes] };

    /// <summary>mmap(NULL, ...) with the result asserted != MAP_FAILED.</summary>
    public static ulong MmapOk(Process p, ulong size, Prot prot, MapFlags flags, ShmemFile? file = null)
    {
        Assert.Equal(Errno.None, p.Mmap(0, size, prot, flags, out ulong addr, file));
        return addr;
    }

    /// <summary>hmm_buffer_free: munmap(ptr, size) if ptr is set (result ignored, as in C). The C test
    /// never closes buffer->fd; its process exit does, so the file is closed here.</summary>
    public static void HmmBufferFree(Process p, HmmBuffer buffer)
    {
        if (buffer.Ptr != 0)
        {
            p.Munmap(buffer.Ptr, buffer.Size);
            buffer.Ptr = 0;
        }
        buffer.Fd?.Dispose();
        buffer.Fd = null;
    }

    /// <summary>hmm_create_file: an O_TMPFILE file truncated to <paramref name="size"/>.</summary>
    public ShmemFile HmmCreateFile(ulong size) => Machine.CreateFile(size);

    /// <summary>mmap of the dmirror device file itself (hmm-tests.c: mixedmap). shared/API.md has no
    /// such call; this uses a Process.Mmap overload taking a Dmirror in place of the ShmemFile if the
    /// implementation provides one, and fails the test otherwise.</summary>
    public static Errno MmapDmirror(Process p, ulong size, Prot prot, MapFlags flags, Dmirror file, out ulong addr)
    {
        var mmap = typeof(Process).GetMethod(nameof(Process.Mmap), BindingFlags.Public | BindingFlags.Instance, null,
            [typeof(ulong), typeof(ulong), typeof(Prot), typeof(MapFlags), typeof(ulong).MakeByRefType(), typeof(Dmirror), typeof(ulong)], null);
        if (mmap is null)
            Assert.Fail("shared/API.md has no mmap of /dev/hmm_dmirrorN: expected Process.Mmap(ulong, ulong, Prot, MapFlags, out ulong, Dmirror, ulong)");
        object?[] args = [0UL, size, prot, flags, 0UL, file, 0UL];
        var err = (Errno)mmap!.Invoke(p, args)!;
        addr = (ulong)args[4]!;
        return err;
    }

    // Data: the C tests treat buffers as int arrays and write ptr[i] = f(i).

    public static byte[] MakeInts(ulong count, Func<long, int> f)
    {
        var bytes = new byte[count * sizeof(int)];
        FillInts(bytes, f);
        return bytes;
    }

    public static void FillInts(Span<byte> bytes, Func<long, int> f)
    {
        var ints = MemoryMarshal.Cast<byte, int>(bytes);
        for (int i = 0; i < ints.Length; i++)
            ints[i] = f(i);
    }

    /// <summary>ASSERT_EQ(ptr[i], expected(i)) for i in [from, to), reporting the first mismatch.</summary>
    public static void AssertInts(ReadOnlySpan<byte> bytes, long from, long to, Func<long, int> expected, string what)
    {
        var ints = MemoryMarshal.Cast<byte, int>(bytes);
        for (long i = from; i < to; i++)
        {
            int want = expected(i);
            if (ints[(int)i] != want)
                Assert.Fail($"{what}[{i}] == {ints[(int)i]}, expected {want}");
        }
    }

    /// <summary>The CPU loop ptr[i] = f(i) for i in [0, count) at <paramref name="addr"/>, as the process's stores.</summary>
    public static void CpuWriteInts(Process p, ulong addr, ulong count, Func<long, int> f) => p.Write(addr, MakeInts(count, f));

    /// <summary>The CPU loop ASSERT_EQ(ptr[i], expected(i)) for i in [from, to) of the int array at
    /// <paramref name="ptr"/>, as the process's loads.</summary>
    public static void CpuAssertInts(Process p, ulong ptr, long from, long to, Func<long, int> expected)
    {
        if (to <= from)
            return;
        var bytes = new byte[(to - from) * sizeof(int)];
        p.Read(ptr + (ulong)from * sizeof(int), bytes);
        var ints = MemoryMarshal.Cast<byte, int>(bytes);
        for (long i = from; i < to; i++)
        {
            int want = expected(i);
            if (ints[(int)(i - from)] != want)
                Assert.Fail($"ptr[{i}] == {ints[(int)(i - from)]}, expected {want}");
        }
    }

    /// <summary>The CPU loop ASSERT_EQ(ptr[i]++, i) for i in [0, count): each int is one load and one
    /// store, in order, as the C loop does, so the first load of a page takes its fault and the store
    /// right after it any write fault. The loop makes no system call, so the DEBUG_VM checker runs once
    /// it is done rather than between two ints.</summary>
    public static void CpuCheckAndIncrementInts(Process p, ulong ptr, ulong count)
    {
        Span<byte> b = stackalloc byte[sizeof(int)];
        using (p.Machine.Operation())
        {
            for (ulong i = 0; i < count; i++)
            {
                ulong a = ptr + i * sizeof(int);
                p.AccessInOperation(a, b, write: false);
                int v = MemoryMarshal.Read<int>(b);
                if (v != (int)i)
                    Assert.Fail($"ptr[{i}] == {v}, expected {(int)i}");
                MemoryMarshal.Write(b, v + 1);
                p.AccessInOperation(a, b, write: true);
            }
        }
        p.Machine.AfterOperation();
    }

    /// <summary>The status waitpid() reports for a fork()ed child.</summary>
    public readonly record struct WaitStatus(bool Exited, int ExitStatus, Exception? Abort)
    {
        /// <summary>ASSERT_TRUE(WIFEXITED(status)), naming what ended the child otherwise.</summary>
        public void AssertExited()
        {
            if (!Exited)
                Assert.Fail($"the child did not exit: {Abort}");
        }
    }

    /// <summary>The child side of fork(): its code runs on <paramref name="child"/>, then _exit(0). A
    /// failed ASSERT (or a kernel BUG) there ends the child abnormally, as the harness's abort() does;
    /// the parent learns of it from waitpid().</summary>
    public static WaitStatus RunChild(Process child, Action body)
    {
        try
        {
            body();
            child.Dispose();
            return new WaitStatus(Exited: true, ExitStatus: 0, Abort: null);
        }
        catch (Exception e)
        {
            child.Dispose();
            return new WaitStatus(Exited: false, ExitStatus: 0, Abort: e);
        }
    }

    /// <summary>FIXTURE_TEARDOWN: close the dmirror file(s); then the test process exits and the
    /// machine is shut down (which checks that teardown returned every page).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        Fd?.Dispose();
        Fd1?.Dispose();
        Self.Dispose();
        Machine.Dispose();
    }
}
