using System.Diagnostics;
using System.Runtime.InteropServices;
using HmmSim.Kernel;

namespace HmmSim.Cli.Workloads;

/// <summary>`hmmsim bench scale`: GPU memory of real machine shapes beside 2 TiB of RAM. Each shape's
/// device-private memory is registered through the exported API (memremap of 8 devices) and its
/// struct-page cost reported as the kernel computes it; then a working set of same-filled pages (one
/// word per page, so it needs no 4 KiB each) migrates to a dmirror device and back in windows, every
/// page verified both ways.</summary>
public static class ScaleWorkload
{
    public sealed record Shape(string Name, int Devices, ulong BytesPerDevice);

    public static readonly Shape[] Shapes = [new("H200", 8, 141UL << 30), new("MI300X", 8, 192UL << 30)];

    public const ulong RamBytes = 2UL << 40;

    public sealed record Registration(DevicePrivateDesign Design, string Shape, ulong DeviceBytes, double Ms, long KernelStructPageBytes,
        ulong KernelMemmapPagesInitialised, long ModelMemmapBytes, ulong ModelMemmapPagesInitialised);

    /// <summary>One design's migration of the working set. <paramref name="PeakRssBytes"/> is this design's
    /// peak from building the machine to disposing it (VmHWM, reset after a full collection before the
    /// machine is built), <paramref name="PeakRssBeforeTeardownBytes"/> the peak with every page migrated
    /// and back (before munmap, close and machine teardown), <paramref name="BaseRssBytes"/> the resident
    /// set at the reset (the runtime, the CLI, the window buffers), so (peak - base) / pages is what the
    /// model spends per working-set page. <paramref name="ModelSeconds"/> covers the whole design,
    /// <paramref name="TeardownSeconds"/> its munmap, close and machine dispose.</summary>
    public sealed record Migration(DevicePrivateDesign Design, ulong Bytes, ulong Pages, double SysToDevPagesPerSec, (double Median, double Min, double Max) SysToDevWindow,
        double DevToSysPagesPerSec, (double Median, double Min, double Max) DevToSysWindow, (double Median, double Min, double Max) FillOfMigrateToDev,
        double ModelSeconds, double TeardownSeconds, long PeakRssBytes, long PeakRssBeforeTeardownBytes, long BaseRssBytes, bool PeakRssReset, long PageDataBytes, long SameFilledPages, long StructPageBytesKernel,
        long ModelMemmapBytes, ulong ModelMemmapPagesInitialised, ulong PagesVerified)
    {
        /// <summary>Full (gen 2) collections of the .NET heap during the design, and the time the GC paused
        /// the model for (all generations): the host's cost of holding the model's state, not the kernel's.</summary>
        public int GcGen2Collections { get; init; }
        public double GcPauseSeconds { get; init; }

        /// <summary>Model bytes of peak RSS per working-set page, above the base.</summary>
        public double PeakRssBytesPerPage => Pages == 0 ? 0 : (double)(PeakRssBytes - BaseRssBytes) / Pages;
    }

    /// <summary>The default window: one PMD. The CPU's write, MIGRATE_TO_DEV's copy-out and the checks of a
    /// 2 MiB window stay in the CPU's caches; a 64 MiB window takes each of them to DRAM and back (the
    /// whole design ran 30-40 % longer at 8 GiB).</summary>
    public const ulong DefaultWindowBytes = 2UL << 20;

    /// <summary>The page's word: non-zero and different for every page of the working set.</summary>
    public static ulong WordOf(ulong page) => (page + 1) * 0x9E3779B97F4A7C15UL | 1;

    public static List<Registration> Register(DevicePrivateDesign design)
    {
        var rows = new List<Registration>();
        foreach (var shape in Shapes)
        {
            using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, RamBytes = RamBytes, CheckInvariants = false, HugetlbPages = 0 });
            var k = m.Kernel;
            long kernel0 = m.VmStat["struct_page_bytes_kernel"], model0 = m.VmStat["struct_page_bytes_model"];
            ulong pages0 = MaterialisedPages(m);
            var pgmaps = new List<DevPagemap>();
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < shape.Devices; i++)
            {
                var pgmap = new DevPagemap(MemoryType.DevicePrivate, new object(), new DevPagemapOps { FolioFree = _ => { }, MigrateToRam = _ => VmFaultResult.Sigbus });
                var err = (Errno)Memremap.AddDevicePrivateMemory(k, pgmap, shape.BytesPerDevice, $"{shape.Name.ToLowerInvariant()}{i}");
                if (err != Errno.None)
                    throw new InvalidOperationException($"registering {shape.Name} device {i} ({shape.BytesPerDevice >> 30} GiB) failed: {err}");
                pgmaps.Add(pgmap);
            }
            sw.Stop();
            rows.Add(new Registration(design, shape.Name, (ulong)shape.Devices * shape.BytesPerDevice, sw.Elapsed.TotalMilliseconds,
                m.VmStat["struct_page_bytes_kernel"] - kernel0, (ulong)shape.Devices * (shape.BytesPerDevice >> 12),
                m.VmStat["struct_page_bytes_model"] - model0, MaterialisedPages(m) - pages0));
            foreach (var pgmap in pgmaps)
                Memremap.RemoveDevicePrivateMemory(k, pgmap);
        }
        return rows;
    }

    /// <summary>What the host charges the first time a page of memory is touched, in ns per 4 KiB page:
    /// 256 MiB newly mapped (malloc of that size is an mmap) written one byte per page. The model's state
    /// grows with the working set (struct pages, the device's chunk arrays, the mirror's table: about
    /// 100 B per page), so on a host whose page faults are dear this, not the model's code, bounds what
    /// a migration of pages never touched before can reach.</summary>
    public static double HostFirstTouchNsPerPage()
    {
        const int bytes = 256 << 20;
        nint memory = Marshal.AllocHGlobal(bytes);
        try
        {
            var sw = Stopwatch.StartNew();
            for (int offset = 0; offset < bytes; offset += 4096)
                Marshal.WriteByte(memory, offset, 1);
            return sw.Elapsed.TotalNanoseconds / (bytes >> 12);
        }
        finally
        {
            Marshal.FreeHGlobal(memory);
        }
    }

    /// <summary>Struct pages the model has built (memmap_init for the sections touched so far).</summary>
    private static ulong MaterialisedPages(Machine m) => (ulong)m.VmStat["struct_pages_initialised_model"];

    public static Migration Migrate(DevicePrivateDesign design, ulong bytes, ulong windowBytes = DefaultWindowBytes, Action<string, double>? progress = null)
    {
        if (windowBytes == 0 || windowBytes % (2UL << 20) != 0 || windowBytes > 1UL << 30)
            throw new ArgumentOutOfRangeException(nameof(windowBytes), windowBytes, "a window is a whole number of 2 MiB PMDs, at most 1 GiB");
        // Two window buffers: what the CPU writes, and what MIGRATE_TO_DEV returns (checked against the
        // words, so stale bytes from the previous window cannot pass as this one's).
        var source = GC.AllocateUninitializedArray<byte>((int)windowBytes);
        var returned = GC.AllocateUninitializedArray<byte>((int)windowBytes);
        // Touch both buffers so the base resident set includes them.
        source.AsSpan().Clear();
        returned.AsSpan().Clear();
        bool reset = ResetPeakRss();
        long baseRss = HmmWorkloads.Sample(0).RssBytes;

        int gen2 = GC.CollectionCount(2);
        var pause = GC.GetTotalPauseDuration();
        var total = Stopwatch.StartNew();
        Migration result;
        double teardownStart;
        using (var m = new Machine(new MachineConfig { DevicePrivateDesign = design, RamBytes = RamBytes, CheckInvariants = false, HugetlbPages = 0 }))
        {
            result = MigrateWorkingSet(m, design, bytes, windowBytes, source, returned, progress);
            teardownStart = total.Elapsed.TotalSeconds;
        }
        var after = HmmWorkloads.Sample(0, collect: false);
        return result with
        {
            ModelSeconds = total.Elapsed.TotalSeconds,
            TeardownSeconds = total.Elapsed.TotalSeconds - teardownStart + result.TeardownSeconds,
            PeakRssBytes = Math.Max(after.PeakRssBytes, result.PeakRssBeforeTeardownBytes),
            BaseRssBytes = baseRss,
            PeakRssReset = reset,
            GcGen2Collections = GC.CollectionCount(2) - gen2,
            GcPauseSeconds = (GC.GetTotalPauseDuration() - pause).TotalSeconds,
        };
    }

    /// <summary>The working set to the device and back on <paramref name="m"/>, then munmap (timed as teardown).</summary>
    private static Migration MigrateWorkingSet(Machine m, DevicePrivateDesign design, ulong bytes, ulong windowBytes, byte[] source, byte[] returned, Action<string, double>? progress)
    {
        var sourceWords = MemoryMarshal.Cast<byte, ulong>(source.AsSpan());
        var returnedWords = MemoryMarshal.Cast<byte, ulong>(returned.AsSpan());
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong pmd = 2UL << 20;
        Check(p.Mmap(0, bytes + pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + pmd - 1) & ~(pmd - 1);
        Check(p.Madvise(a, bytes, Advice.HugePage));
        ulong windows = (bytes + windowBytes - 1) / windowBytes, verified = 0;
        var toDev = new double[windows];
        var toSys = new double[windows];
        var fill = new double[windows];
        double toDevSeconds = 0, toSysSeconds = 0;
        var sw = new Stopwatch();
        var fillWatch = new Stopwatch();
        // Ctrl-C stops at the next window: the windows already on the device still come back and are
        // checked, and the figures are those of the part that moved.
        ulong moved = 0;
        for (ulong w = 0; w < windows && !Interrupt.Requested; w++, moved++)
        {
            ulong off = w * windowBytes, len = Math.Min(windowBytes, bytes - off), first = off >> 12, n = len >> 12;
            // The CPU writing the window's bytes at memory speed: the baseline MIGRATE_TO_DEV is compared with.
            fillWatch.Restart();
            for (ulong i = 0; i < n; i++)
                sourceWords.Slice((int)(i * 512), 512).Fill(WordOf(first + i));
            fillWatch.Stop();
            p.Write(a + off, source.AsSpan(0, (int)len));
            sw.Restart();
            var r = dev.MigrateToDevice(a + off, n, returned.AsSpan(0, (int)len));
            sw.Stop();
            if (r.Error != Errno.None)
                throw new InvalidOperationException($"migrate to device of window {w} failed: {r}");
            toDevSeconds += sw.Elapsed.TotalSeconds;
            toDev[w] = n / sw.Elapsed.TotalSeconds;
            fill[w] = fillWatch.Elapsed.TotalSeconds / sw.Elapsed.TotalSeconds;
            // MIGRATE_TO_DEV reads every page back through the device's mirror after the migration
            // (dmirror_do_read of the new device pages): the check on the device.
            verified += Verify(returnedWords, first, n, "on the device");
            progress?.Invoke("to the device", (double)(w + 1) / windows / 2);
        }
        for (ulong w = 0; w < moved; w++)
        {
            ulong off = w * windowBytes, len = Math.Min(windowBytes, bytes - off), first = off >> 12, n = len >> 12;
            sw.Restart();
            var r = dev.MigrateToSystem(a + off, n);
            sw.Stop();
            if (r.Error != Errno.None)
                throw new InvalidOperationException($"migrate to system of window {w} failed: {r}");
            toSysSeconds += sw.Elapsed.TotalSeconds;
            toSys[w] = n / sw.Elapsed.TotalSeconds;
            // Every page came back through the device's copy: a CPU read checks what it held.
            p.Read(a + off, returned.AsSpan(0, (int)len));
            verified += Verify(returnedWords, first, n, "back in RAM");
            progress?.Invoke("back to RAM", 0.5 + (double)(w + 1) / windows / 2);
        }
        var sample = HmmWorkloads.Sample(0, collect: false);
        ulong movedBytes = Math.Min(bytes, moved * windowBytes), pages = movedBytes >> 12;
        var result = new Migration(design, movedBytes, pages, Rate(pages, toDevSeconds), SpreadOf(toDev, moved), Rate(pages, toSysSeconds), SpreadOf(toSys, moved),
            SpreadOf(fill, moved), 0, 0, 0, sample.PeakRssBytes, 0, false, m.VmStat["page_data_bytes_model"], m.VmStat["page_data_same_filled_pages_model"],
            m.VmStat["struct_page_bytes_kernel"], m.VmStat["struct_page_bytes_model"], MaterialisedPages(m), verified);
        var munmap = Stopwatch.StartNew();
        Check(p.Munmap(raw, bytes + pmd));
        return result with { TeardownSeconds = munmap.Elapsed.TotalSeconds };
    }

    /// <summary>Resets the process's peak resident set (VmHWM) to its current size, so each design's peak
    /// is its own (proc(5): writing 5 to /proc/self/clear_refs). False where that is not available; the
    /// peak is then the process's since it started.</summary>
    private static bool ResetPeakRss()
    {
        // Aggressive: compact and give the freed heap back to the OS, so the previous design's machine
        // does not stay resident and hide this one's cost.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DirectoryNotFoundException or NotSupportedException)
        {
            return false;
        }
    }

    private static double Rate(ulong pages, double seconds) => pages == 0 ? 0 : pages / seconds;

    /// <summary>The spread of the first <paramref name="count"/> windows' figures (zeros when none ran).</summary>
    private static (double Median, double Min, double Max) SpreadOf(double[] perWindow, ulong count) =>
        count == 0 ? (0, 0, 0) : HmmWorkloads.Spread(perWindow[..(int)count]);

    private static ulong Verify(Span<ulong> words, ulong first, ulong n, string where)
    {
        for (ulong i = 0; i < n; i++)
        {
            if (words.Slice((int)(i * 512), 512).IndexOfAnyExcept(WordOf(first + i)) >= 0)
                throw new InvalidOperationException($"page {first + i} reads wrong {where}");
        }
        return n;
    }

    private static void Check(Errno e)
    {
        if (e != Errno.None)
            throw new InvalidOperationException($"unexpected {e}");
    }
}
