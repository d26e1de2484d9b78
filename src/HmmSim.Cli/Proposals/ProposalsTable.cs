using HmmSim.Kernel;
using HmmSim.Selftests;

namespace HmmSim.Cli.Proposals;

/// <summary>The figures of `hmmsim proposals`: per design and proposal, whether it passes the battery
/// and answers as the default redesign, what its metadata costs the kernel and the model for the
/// machine shapes users have, registration-time memmap initialisation, and code sites changed.</summary>
public static class ProposalsTable
{
    /// <summary>A machine shape: <see cref="Devices"/> devices of <see cref="BytesPerDevice"/> each.</summary>
    public sealed record Shape(string Name, int Devices, ulong BytesPerDevice)
    {
        public ulong TotalBytes => (ulong)Devices * BytesPerDevice;
    }

    /// <summary>H200-class, MI300X-class and a 16 GiB card.</summary>
    public static IReadOnlyList<Shape> Shapes { get; } =
    [
        new("8 x 141 GiB (H200-class)", 8, 141UL << 30),
        new("8 x 192 GiB (MI300X-class)", 8, 192UL << 30),
        new("1 x 16 GiB", 1, 16UL << 30),
    ];

    /// <summary>A design or proposal the table compares.</summary>
    public sealed record Design(string Name, DevicePrivateDesign Base, DesignVariants Variants);

    /// <summary>Today's design, the default redesign, each proposal alone and all three together.</summary>
    public static IReadOnlyList<Design> Designs { get; } =
    [
        new("today (physical address space)", DevicePrivateDesign.PhysicalAddressSpace, new DesignVariants()),
        new("redesign (default)", DevicePrivateDesign.DeviceAddressSpace, new DesignVariants()),
        new("Zone=ZoneDevicePrivate", DevicePrivateDesign.DeviceAddressSpace, new DesignVariants { Zone = DevicePrivateZone.ZoneDevicePrivate }),
        new("Identity=PerPagemapSpace", DevicePrivateDesign.DeviceAddressSpace, new DesignVariants { Identity = DevicePrivateIdentity.PerPagemapSpace }),
        new("DevicePageMetadata=Minimal", DevicePrivateDesign.DeviceAddressSpace, new DesignVariants { DevicePageMetadata = DevicePageMetadata.Minimal }),
        new("all three proposals", DevicePrivateDesign.DeviceAddressSpace, new DesignVariants
        {
            Zone = DevicePrivateZone.ZoneDevicePrivate,
            Identity = DevicePrivateIdentity.PerPagemapSpace,
            DevicePageMetadata = DevicePageMetadata.Minimal,
        }),
    ];

    /// <summary>The init-time anchor: memmap_init_zone_device over a 100 GB fsdax namespace, order-0
    /// pages, Ice Lake VM, mainline 7.1-rc3 (LKML, Li Zhe, 15 May 2026, "mm: add a template-based fast
    /// path for zone-device page init"): 1486 ms on first binding, 273.52 ms averaged over rebinds.</summary>
    public const double AnchorColdNsPerPage = 1486e6 / (100e9 / 4096), AnchorWarmNsPerPage = 273.52e6 / (100e9 / 4096);

    /// <summary>One shape under one design.</summary>
    public sealed record ShapeRow(string Shape, long KernelMetadataBytes, double PercentOfDeviceMemory, long ModelBytesAtRegistration,
        long ModelBytesAfterTouch, ulong MemmapPagesInitialisedByKernel, double InitMsWarm, double InitMsCold, string RegisterError);

    /// <summary>One design's row.</summary>
    public sealed record Row(string Design, int BatteryPassed, int BatteryTotal, bool? SameAnswers, string? FirstDifference,
        int DescriptorBytesPerPage, double KernelBytesPerTiB, string EntryBudget, int SitesChanged, IReadOnlyList<ShapeRow> Shapes);

    /// <summary>Builds every row; <paramref name="battery"/> false skips the selftest battery (reported as 0 of 0).</summary>
    public static IReadOnlyList<Row> Build(bool battery, Action<string>? progress = null)
    {
        var baseline = ProposalWorkload.Answers(new DesignVariants());
        var rows = new List<Row>();
        foreach (var d in Designs)
        {
            progress?.Invoke(d.Name);
            bool redesign = d.Base == DevicePrivateDesign.DeviceAddressSpace;
            int passed = 0, total = 0;
            if (battery)
            {
                // Ctrl-C: the battery stops after the selftest in progress; each row counts what ran.
                foreach (var c in SelftestCatalog.All.Where(c => c.Design == d.Base).TakeWhile(_ => !Interrupt.Requested))
                {
                    total++;
                    try
                    {
                        SelftestCatalog.RunWith(c, d.Variants);
                        passed++;
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        progress?.Invoke($"  FAIL {c.Name}: {e.Message}");
                    }
                }
            }
            bool? same = null;
            string? diff = null;
            if (redesign)
            {
                var answers = ProposalWorkload.Answers(d.Variants);
                same = answers.SequenceEqual(baseline);
                if (same == false)
                    diff = answers.Zip(baseline).Select((p, i) => (p, i)).Where(x => x.p.First != x.p.Second)
                        .Select(x => $"line {x.i}: '{x.p.Second}' vs '{x.p.First}'").FirstOrDefault() ?? $"{answers.Count} vs {baseline.Count} lines";
            }
            int descriptor = d.Variants.DevicePageMetadata == DevicePageMetadata.Minimal ? ProposalFigures.MinimalDescriptorBytes : ProposalFigures.StructPageBytes;
            var budget = ProposalFigures.IdentityBudgets()[0];
            string entry = !redesign
                ? $"a PFN: {budget.IndexBits} bits, device memory takes physical address space"
                : d.Variants.Identity == DevicePrivateIdentity.PerPagemapSpace
                    ? $"space {budget.SpaceBits} bits + index {budget.IndexBits} bits (x86-64 4-level)"
                    : $"global offset {budget.IndexBits} bits (x86-64 4-level)";
            int sites = (d.Variants.Zone == DevicePrivateZone.ZoneDevicePrivate ? ProposalFigures.ZoneSitesChanged.Count : 0)
                + (d.Variants.Identity == DevicePrivateIdentity.PerPagemapSpace ? ProposalFigures.IdentitySitesChanged.Count : 0)
                + (d.Variants.DevicePageMetadata == DevicePageMetadata.Minimal ? ProposalFigures.MetadataSitesChanged.Count : 0);
            var shapes = Shapes.Select(s => Measure(d, s, descriptor)).ToList();
            rows.Add(new Row(d.Name, passed, total, same, diff, descriptor, (double)(1UL << 40) / 4096 * descriptor, entry, sites, shapes));
        }
        return rows;
    }

    /// <summary>Registers the shape's device memory on a machine of the design (the model builds memmap
    /// sections lazily, so this costs it next to nothing), touches one page per device, and reads what the
    /// kernel would have spent and initialised.</summary>
    private static ShapeRow Measure(Design d, Shape s, int descriptorBytes)
    {
        using var m = new Machine(new MachineConfig
        {
            DevicePrivateDesign = d.Base,
            Variants = d.Variants,
            CheckInvariants = false,
            HugetlbPages = 0,
            PhysicalAddressBits = 46,
        });
        var k = m.Kernel;
        long kernel0 = m.VmStat["struct_page_bytes_kernel"], model0 = m.VmStat["struct_page_bytes_model"];
        var pgmaps = new List<DevPagemap>();
        string error = "";
        for (int i = 0; i < s.Devices; i++)
        {
            var pgmap = new DevPagemap(MemoryType.DevicePrivate, new object(), new DevPagemapOps { FolioFree = _ => { }, MigrateToRam = _ => VmFaultResult.Sigbus });
            var err = Memremap.AddDevicePrivateMemory(k, pgmap, s.BytesPerDevice, $"gpu{i}");
            if (err != Kernel.Errno.None)
            {
                error = $"device {i}: {err}";
                break;
            }
            pgmaps.Add(pgmap);
        }
        long kernelBytes = m.VmStat["struct_page_bytes_kernel"] - kernel0;
        long modelAtRegistration = m.VmStat["struct_page_bytes_model"] - model0;
        foreach (var pgmap in pgmaps)
        {
            var f = Memremap.ZoneDeviceFolioInit(Memremap.PageOf(k, pgmap, pgmap.NrPages - 1), 0);
            f.Unlock();
            f.Put();
        }
        long modelAfterTouch = m.VmStat["struct_page_bytes_model"] - model0;
        foreach (var pgmap in pgmaps)
            Memremap.RemoveDevicePrivateMemory(k, pgmap);
        ulong pages = (ulong)pgmaps.Count * (s.BytesPerDevice / 4096);
        // Init time scales with the bytes memmap_init_zone_device writes per page.
        double scale = descriptorBytes / 64.0;
        return new ShapeRow(s.Name, kernelBytes, 100.0 * kernelBytes / s.TotalBytes, modelAtRegistration, modelAfterTouch, pages,
            pages * AnchorWarmNsPerPage * scale / 1e6, pages * AnchorColdNsPerPage * scale / 1e6, error);
    }
}
