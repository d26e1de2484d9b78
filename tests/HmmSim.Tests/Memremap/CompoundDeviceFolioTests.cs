namespace HmmSim.Tests.Memremap;

/// <summary>Device folios of every order memremap_pages accepts, up to PUD order (1 GiB of 4 KiB
/// pages, as device-dax asks for with vmemmap_shift = 18): such a folio spans eight 128 MiB memmap
/// sections, and every tail must still find its head, its pgmap and its folio's size.</summary>
public class CompoundDeviceFolioTests
{
    private const ulong Mib = 1UL << 20;
    private const ulong Gib = 1UL << 30;
    private const int PudOrder = 18;
    private const ulong DeviceBase = 16 * Gib;

    public static TheoryData<MemoryType, int> TypesAndOrders => new()
    {
        { MemoryType.Generic, PudOrder },
        { MemoryType.FsDax, PudOrder },
        { MemoryType.Generic, 16 },
        { MemoryType.FsDax, 17 },
    };

    public static TheoryData<DevicePrivateDesign> Designs => [DevicePrivateDesign.PhysicalAddressSpace, DevicePrivateDesign.DeviceAddressSpace];

    private static (DevPagemap Pgmap, Folio Head) MapGigabyte(Machine m, MemoryType type, int order)
    {
        var pgmap = new DevPagemap(type, null, new DevPagemapOps(), vmemmapShift: order);
        Assert.Equal(HmmSim.Kernel.Errno.None, HmmSim.Kernel.Memremap.MemremapPages(m.Kernel, pgmap, new HmmSim.Kernel.PhysicalRange(DeviceBase, Gib)));
        return (pgmap, m.Kernel.Memmap.PfnToPage(new Pfn(DeviceBase >> 12)).Folio);
    }

    [Theory]
    [MemberData(nameof(TypesAndOrders))]
    public void EveryTailPastTheFirstSectionFindsItsHeadAndPgmap(MemoryType type, int order)
    {
        using var m = new Machine();
        var (pgmap, _) = MapGigabyte(m, type, order);
        var memmap = m.Kernel.Memmap;
        ulong first = DeviceBase >> 12, pages = Gib >> 12;
        int nr = 1 << order;
        long wrongFolio = 0, wrongPgmap = 0, wrongPage = 0;
        for (ulong i = 0; i < pages; i++)
        {
            var page = memmap.PfnToPage(new Pfn(first + i));
            var folio = page.Folio;
            var head = memmap.PfnToPage(new Pfn(first + (i & ~(ulong)(nr - 1))));
            if (folio.Page() != head || folio.Order != order || folio.NrPages != nr)
                wrongFolio++;
            if (!ReferenceEquals(page.Pgmap, pgmap))
                wrongPgmap++;
            if (folio.Page((int)(i & (ulong)(nr - 1))) != page)
                wrongPage++;
        }
        Assert.Equal(0, wrongFolio);
        Assert.Equal(0, wrongPgmap);
        Assert.Equal(0, wrongPage);
        // __init_zone_device_page: only MEMORY_DEVICE_GENERIC folios start with a reference.
        Assert.Equal(type == MemoryType.Generic ? 1 : 0, memmap.PfnToPage(new Pfn(first)).Folio.RefCount);
        HmmSim.Kernel.Memremap.MemunmapPages(m.Kernel, pgmap);
    }

    [Fact]
    public void AGigabyteFolioCostsEightSectionsOfModelMemmapAndNoPerPageObjects()
    {
        using var m = new Machine();
        long before = m.VmStat["struct_page_bytes_model"];
        var (pgmap, head) = MapGigabyte(m, MemoryType.Generic, PudOrder);
        var memmap = m.Kernel.Memmap;
        ulong first = DeviceBase >> 12, pages = Gib >> 12;
        // The last tail page reaches back seven sections to its head.
        Assert.Equal(head, memmap.PfnToPage(new Pfn(first + pages - 1)).Folio);
        for (ulong i = 0; i < pages; i += (ulong)memmap.PagesPerSection)
            Assert.Equal(head, memmap.PfnToPage(new Pfn(first + i)).Folio);
        // 8 sections of 32768 24-byte struct pages and 64 subsection pgmap slots each.
        long sectionBytes = (long)memmap.PagesPerSection * 24 + (memmap.PagesPerSection >> MemSection.SubsectionShift) * 8;
        Assert.Equal(8 * sectionBytes, m.VmStat["struct_page_bytes_model"] - before);
        // With the memmap built, walking every page of the folio allocates nothing per page (less than a
        // byte a page all told, where one object a page would be tens of bytes).
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long heads = 0;
        for (ulong i = 0; i < pages; i++)
            if (memmap.PfnToPage(new Pfn(first + i)).Folio == head)
                heads++;
        long perWalk = GC.GetAllocatedBytesForCurrentThread() - allocated;
        Assert.Equal((long)pages, heads);
        Assert.True(perWalk < (long)pages, $"walking {pages} pages allocated {perWalk} bytes");
        HmmSim.Kernel.Memremap.MemunmapPages(m.Kernel, pgmap);
    }

    [Fact]
    public void GenericGigabyteFolioStartsWithOneReferenceAndIsResetToOneWhenFreed()
    {
        using var m = new Machine();
        var (pgmap, head) = MapGigabyte(m, MemoryType.Generic, PudOrder);
        var tail = m.Kernel.Memmap.PfnToPage(new Pfn((DeviceBase + Gib - 4096) >> 12));
        // __init_zone_device_page: a MEMORY_DEVICE_GENERIC folio keeps the count of 1; tails hold 0.
        Assert.Equal(1, head.RefCount);
        Assert.Equal(0, tail.Desc.RefCount);
        // A reference taken through a tail in the last section lands on the head.
        tail.Folio.Get();
        Assert.Equal(2, head.RefCount);
        tail.Folio.Put();
        tail.Folio.Put();
        // free_zone_device_folio: a generic folio is ready to be handed out again, still whole.
        Assert.Equal(1, head.RefCount);
        Assert.Equal(PudOrder, tail.Folio.Order);
        Assert.Equal(head, tail.Folio);
        HmmSim.Kernel.Memremap.MemunmapPages(m.Kernel, pgmap);
    }

    [Fact]
    public void SplittingAGigabyteDeviceFolioLeavesEveryPageAFolioOfItsOwn()
    {
        using var m = new Machine();
        var (pgmap, head) = MapGigabyte(m, MemoryType.Generic, PudOrder);
        head.Lock();
        Assert.Equal(HmmSim.Kernel.Errno.None, HugeMemory.SplitFolio(m.Kernel, head));
        head.Unlock();
        var memmap = m.Kernel.Memmap;
        ulong first = DeviceBase >> 12, pages = Gib >> 12;
        long notOwn = 0, wrongCount = 0, wrongPgmap = 0;
        for (ulong i = 0; i < pages; i++)
        {
            var page = memmap.PfnToPage(new Pfn(first + i));
            var f = page.Folio;
            if (f.Page() != page || f.IsLarge || f.NrPages != 1)
                notOwn++;
            // Each new folio dropped its split reference and went back to its idle count of 1.
            if (f.RefCount != 1)
                wrongCount++;
            if (!ReferenceEquals(f.Pgmap, pgmap))
                wrongPgmap++;
        }
        Assert.Equal(0, notOwn);
        Assert.Equal(0, wrongCount);
        Assert.Equal(0, wrongPgmap);
        HmmSim.Kernel.Memremap.MemunmapPages(m.Kernel, pgmap);
    }

    [Theory]
    [MemberData(nameof(Designs))]
    public void DevicePrivateFolioOfPudOrderSpansSectionsAndFreesWhole(DevicePrivateDesign design)
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = design });
        var freed = new List<Folio>();
        var pgmap = new DevPagemap(MemoryType.DevicePrivate, new object(), new DevPagemapOps
        {
            FolioFree = freed.Add,
            MigrateToRam = _ => VmFaultResult.None,
        });
        Assert.Equal(HmmSim.Kernel.Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 2 * Gib, "dev"));
        // A 1 GiB-aligned offset inside the pagemap, so the folio is naturally aligned in its space.
        ulong aligned = ((pgmap.First + (Gib >> 12) - 1) & ~((Gib >> 12) - 1)) - pgmap.First;
        var start = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, aligned);
        var folio = HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(start, PudOrder);
        Assert.Equal(1 << PudOrder, pgmap.References);
        var last = HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, aligned + (Gib >> 12) - 1);
        Assert.Equal(folio, last.Folio);
        Assert.True(last.IsDevicePrivate);
        Assert.Same(pgmap, last.Pgmap);
        Assert.Equal(last, folio.Page((1 << PudOrder) - 1));
        folio.Unlock();
        last.Folio.Put();
        Assert.Equal([folio], freed);
        Assert.Equal(0, pgmap.References);
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }

    [Fact]
    public void ZoneDeviceFolioInitRefusesAFolioNotAlignedInItsAddressSpace()
    {
        using var m = new Machine(new MachineConfig { DevicePrivateDesign = DevicePrivateDesign.DeviceAddressSpace });
        var pgmap = new DevPagemap(MemoryType.DevicePrivate, new object(), new DevPagemapOps
        {
            FolioFree = _ => { },
            MigrateToRam = _ => VmFaultResult.None,
        });
        Assert.Equal(HmmSim.Kernel.Errno.None, HmmSim.Kernel.Memremap.AddDevicePrivateMemory(m.Kernel, pgmap, 2 * Gib, "dev"));
        // Section-aligned (128 MiB) but not 1 GiB-aligned: index 0 in its section, yet not a valid PUD folio head.
        ulong aligned = ((pgmap.First + (Gib >> 12) - 1) & ~((Gib >> 12) - 1)) - pgmap.First;
        ulong offSection = aligned + (128 * Mib >> 12);
        Assert.Throws<ArgumentException>(() => HmmSim.Kernel.Memremap.ZoneDeviceFolioInit(HmmSim.Kernel.Memremap.PageOf(m.Kernel, pgmap, offSection), PudOrder));
        HmmSim.Kernel.Memremap.RemoveDevicePrivateMemory(m.Kernel, pgmap);
    }
}
