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

    public sealed record Migration(DevicePrivateDesign Design, ulong Bytes, ulong Pages, double SysToDevPagesPerSec, (double Median, double Min, double Max) SysToDevWindow,
        double DevToSysPagesPerSec, (double Median, double Min, double Max) DevToSysWindow, (double Median, double Min, double Max) FillOfMigrateToDev,
        double ModelSeconds, long PeakRssBytes, long PageDataBytes, long SameFilledPages, long StructPageBytesKernel, long ModelMemmapBytes, ulong PagesVerified);

    public const ulong WindowBytes = 64UL << 20;

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

    /// <summary>Struct pages the model has built (memmap_init for the sections touched so far).</summary>
    private static ulong MaterialisedPages(Machine m) => (ulong)m.VmStat["struct_pages_initialised_model"];

    public static Migration Migrate(DevicePrivateDesign design, ulong bytes, Action<string, double>? progress = null)
    {
        var total = Stopwatch.StartNew();
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design, RamBytes = RamBytes, CheckInvariants = false, HugetlbPages = 0 });
        var p = m.CreateProcess();
        using var dev = p.OpenDmirror(0);
        ulong pmd = 2UL << 20;
        Check(p.Mmap(0, bytes + pmd, Prot.Read | Prot.Write, MapFlags.Private | MapFlags.Anonymous, out ulong raw));
        ulong a = (raw + pmd - 1) & ~(pmd - 1);
        Check(p.Madvise(a, bytes, Advice.HugePage));
        var buffer = GC.AllocateUninitializedArray<byte>((int)WindowBytes);
        var words = MemoryMarshal.Cast<byte, ulong>(buffer.AsSpan());
        ulong windows = (bytes + WindowBytes - 1) / WindowBytes, pages = bytes >> 12, verified = 0;
        var toDev = new double[windows];
        var toSys = new double[windows];
        var fill = new double[windows];
        double toDevSeconds = 0, toSysSeconds = 0;
        var sw = new Stopwatch();
        for (ulong w = 0; w < windows; w++)
        {
            ulong off = w * WindowBytes, len = Math.Min(WindowBytes, bytes - off), first = off >> 12, n = len >> 12;
            for (ulong i = 0; i < n; i++)
                words.Slice((int)(i * 512), 512).Fill(WordOf(first + i));
            p.Write(a + off, buffer.AsSpan(0, (int)len));
            buffer.AsSpan(0, (int)len).Clear();
            sw.Restart();
            var r = dev.MigrateToDevice(a + off, n, buffer.AsSpan(0, (int)len));
            sw.Stop();
            if (r.Error != Errno.None)
                throw new InvalidOperationException($"migrate to device of window {w} failed: {r}");
            toDevSeconds += sw.Elapsed.TotalSeconds;
            toDev[w] = n / sw.Elapsed.TotalSeconds;
            // The same bytes written by the CPU at memory speed: the floor for what the ioctl returns.
            var fillWatch = Stopwatch.StartNew();
            for (ulong i = 0; i < n; i++)
                words.Slice((int)(i * 512), 512).Fill(WordOf(first + i));
            fillWatch.Stop();
            fill[w] = fillWatch.Elapsed.TotalSeconds / sw.Elapsed.TotalSeconds;
            progress?.Invoke("to the device", (double)(w + 1) / windows / 2);
        }
        // The device now holds every page; MIGRATE_TO_DEV returned each window's bytes, checked here
        // by reading them all back through the device before they go home.
        for (ulong w = 0; w < windows; w++)
        {
            ulong off = w * WindowBytes, len = Math.Min(WindowBytes, bytes - off), first = off >> 12, n = len >> 12;
            Check(dev.Read(a + off, n, buffer.AsSpan(0, (int)len)).Error);
            verified += Verify(words, first, n, "on the device");
            sw.Restart();
            var r = dev.MigrateToSystem(a + off, n);
            sw.Stop();
            if (r.Error != Errno.None)
                throw new InvalidOperationException($"migrate to system of window {w} failed: {r}");
            toSysSeconds += sw.Elapsed.TotalSeconds;
            toSys[w] = n / sw.Elapsed.TotalSeconds;
            p.Read(a + off, buffer.AsSpan(0, (int)len));
            verified += Verify(words, first, n, "back in RAM");
            progress?.Invoke("back to RAM", 0.5 + (double)(w + 1) / windows / 2);
        }
        var sample = HmmWorkloads.Sample(0);
        var result = new Migration(design, bytes, pages, pages / toDevSeconds, HmmWorkloads.Spread(toDev), pages / toSysSeconds, HmmWorkloads.Spread(toSys),
            HmmWorkloads.Spread(fill), 0, sample.PeakRssBytes, m.VmStat["page_data_bytes_model"], m.VmStat["page_data_same_filled_pages_model"],
            m.VmStat["struct_page_bytes_kernel"], m.VmStat["struct_page_bytes_model"], verified);
        Check(p.Munmap(raw, bytes + pmd));
        return result with { ModelSeconds = total.Elapsed.TotalSeconds };
    }

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
