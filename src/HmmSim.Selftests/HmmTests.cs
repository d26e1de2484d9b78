using System.Diagnostics;
using static HmmSim.Selftests.HmmFixture;

#pragma warning disable CA1707, IDE1006 // test names are the kernel's TEST_F names

namespace HmmSim.Selftests;

/// <summary>tools/testing/selftests/mm/hmm-tests.c, FIXTURE(hmm): every TEST_F, for both variants
/// (dmirror unit 0, device private; unit 2, device coherent) and both device-private designs. A fork()
/// in C is Process.Fork(); the child's code runs on the child object (RunChild, which ends in its exit)
/// before the parent's waitpid() resumes.</summary>
public sealed class HmmTests
{
    private const Prot ProtRw = Prot.Read | Prot.Write;
    private const MapFlags PrivateAnon = MapFlags.Private | MapFlags.Anonymous;
    private const MapFlags SharedAnon = MapFlags.Shared | MapFlags.Anonymous;

    /// <summary>npages = ALIGN(HMM_BUFFER_SIZE, page_size) >> page_shift; ASSERT_NE(npages, 0).</summary>
    private static ulong BufferPages()
    {
        ulong npages = Align(HmmBufferSize, PageSize) >> PageShift;
        Assert.NotEqual(0UL, npages);
        return npages;
    }

    private static long Ints(ulong bytes) => (long)(bytes / sizeof(int));

    public void open_close(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
    }

    public void anon_read(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        // Page 0 stays pte_none and page 1 becomes the zero page; the rest is ptr[i] = i.
        long first = Ints(2 * PageSize);
        p.Write(buffer.Ptr + 2 * PageSize, MakeInts(size / sizeof(int) - (ulong)first, i => (int)(i + first)));

        Assert.Equal(Errno.None, p.Mprotect(buffer.Ptr, size, Prot.Read));

        int val = p.ReadInt32(buffer.Ptr + PageSize);
        Assert.Equal(0, val);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        AssertInts(buffer.Mirror, 0, first, _ => 0, "mirror");
        AssertInts(buffer.Mirror, first, Ints(size), i => (int)i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void anon_read_prot(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);
        // So that a write by the device would show.
        FillInts(buffer.Mirror, i => (int)-i);

        Assert.Equal(Errno.None, p.Mprotect(buffer.Ptr, size, Prot.None));

        Assert.Equal(Errno.EFAULT, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages));

        Assert.Equal(Errno.None, p.Mprotect(buffer.Ptr, size, Prot.Read));
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)-i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void anon_write(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        FillInts(buffer.Mirror, i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        HmmBufferFree(p, buffer);
    }

    public void anon_write_prot(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, Prot.Read, PrivateAnon);

        // The device reads one page: the zero page.
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, 1));
        Assert.Equal(1UL, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        FillInts(buffer.Mirror, i => (int)i);

        Assert.Equal(Errno.EPERM, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), _ => 0);

        // Once writable, the device's write replaces the zero page.
        Assert.Equal(Errno.None, p.Mprotect(buffer.Ptr, size, Prot.Write | Prot.Read));

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        HmmBufferFree(p, buffer);
    }

    public void anon_write_child(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        for (int migrate = 0; migrate < 2; ++migrate)
        {
            for (int useThp = 0; useThp < 2; ++useThp)
            {
                ulong npages = Align(useThp != 0 ? ReadPmdPagesize() : HmmBufferSize, PageSize) >> PageShift;
                Assert.NotEqual(0UL, npages);
                ulong size = npages << PageShift;

                var buffer = NewBuffer(size * 2, size);
                buffer.Ptr = MmapOk(p, size * 2, ProtRw, PrivateAnon);

                ulong oldPtr = buffer.Ptr;
                if (useThp != 0)
                {
                    ulong map = Align(buffer.Ptr, size);
                    Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
                    buffer.Ptr = map;
                }

                CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);
                FillInts(buffer.Mirror.AsSpan(0, (int)size), i => (int)-i);

                if (migrate != 0)
                {
                    Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
                    Assert.Equal(npages, buffer.CPages);
                }

                var child = p.Fork();
                var status = RunChild(child, () =>
                {
                    // The child: its own copy of the buffer struct and mirror.
                    var cbuf = buffer.CloneForChild();
                    CpuAssertInts(child, cbuf.Ptr, 0, Ints(size), i => (int)i);
                    if (migrate == 0)
                        AssertInts(cbuf.Mirror, 0, Ints(size), i => (int)-i, "mirror");

                    // The child needs its own mirror of its own mm (hmm_open(0) in every variant).
                    using var childFd = child.OpenDmirror(0);
                    Assert.Equal(Errno.None, HmmDmirrorCmd(childFd, HmmDmirrorRequest.Write, cbuf, npages));
                    Assert.Equal(npages, cbuf.CPages);
                    Assert.Equal(1UL, cbuf.Faults);

                    if (migrate == 0)
                        CpuAssertInts(child, cbuf.Ptr, 0, Ints(size), i => (int)-i);
                });

                // The parent, after waitpid(): the child exited and the parent's buffer did not change.
                status.AssertExited();
                CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

                buffer.Ptr = oldPtr;
                HmmBufferFree(p, buffer);
            }
        }
    }

    public void anon_write_child_shared(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, SharedAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);
        FillInts(buffer.Mirror, i => (int)-i);

        var child = p.Fork();
        var status = RunChild(child, () =>
        {
            var cbuf = buffer.CloneForChild();
            CpuAssertInts(child, cbuf.Ptr, 0, Ints(size), i => (int)i);
            AssertInts(cbuf.Mirror, 0, Ints(size), i => (int)-i, "mirror");

            using var childFd = child.OpenDmirror(0);
            Assert.Equal(Errno.None, HmmDmirrorCmd(childFd, HmmDmirrorRequest.Write, cbuf, npages));
            Assert.Equal(npages, cbuf.CPages);
            Assert.Equal(1UL, cbuf.Faults);

            CpuAssertInts(child, cbuf.Ptr, 0, Ints(size), i => (int)-i);
        });

        // The parent, after waitpid(), sees the child's device write: no COW of a shared mapping. The
        // C test returns here without hmm_buffer_free.
        status.AssertExited();
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)-i);
    }

    public void anon_write_huge(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = 2 * ReadPmdPagesize();
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        size /= 2;
        ulong npages = size >> PageShift;
        ulong map = Align(buffer.Ptr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        ulong oldPtr = buffer.Ptr;
        buffer.Ptr = map;

        FillInts(buffer.Mirror.AsSpan(0, (int)size), i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    public void anon_write_hugetlbfs(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong defaultHsize = DefaultHugePageSize();

        // The C test SKIPs without a free huge page (or when the mapping fails); the model boots with a
        // hugetlb pool, so neither may happen here.
        Assert.NotEqual(0L, self.HugetlbFreeDefaultPages());

        ulong size = Align(TwoMeg, defaultHsize);
        ulong npages = size >> PageShift;

        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon | MapFlags.Hugetlb);

        FillInts(buffer.Mirror, i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        p.Munmap(buffer.Ptr, buffer.Size);
        buffer.Ptr = 0;
        HmmBufferFree(p, buffer);
    }

    public void file_read(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;

        var fd = self.HmmCreateFile(size);
        var buffer = NewBuffer(size, size);
        buffer.Fd = fd;

        FillInts(buffer.Mirror, i => (int)i);
        Assert.Equal(Errno.None, fd.Pwrite(buffer.Mirror, 0, out ulong len));
        Assert.Equal(size, len);
        Array.Clear(buffer.Mirror);

        buffer.Ptr = MmapOk(p, size, Prot.Read, MapFlags.Shared, fd);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void file_write(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;

        var fd = self.HmmCreateFile(size);
        var buffer = NewBuffer(size, size);
        buffer.Fd = fd;
        buffer.Ptr = MmapOk(p, size, ProtRw, MapFlags.Shared, fd);

        FillInts(buffer.Mirror, i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        // The device's write reached the file.
        Assert.Equal(Errno.None, fd.Pread(buffer.Mirror, 0, out ulong len));
        Assert.Equal(size, len);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void migrate(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void migrate_file_private(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;

        var fd = self.HmmCreateFile(size);
        var buffer = NewBuffer(size, size);
        buffer.Fd = fd;
        buffer.Ptr = MmapOk(p, size, ProtRw, MapFlags.Private, fd);

        // Every write COWs the file page into an anonymous folio of the file-backed VMA.
        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void migrate_fault(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        // Fault the first half back to system memory.
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size / 2), i => (int)i);

        // Migrate the mix of system and device memory again.
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        HmmBufferFree(p, buffer);
    }

    public void migrate_release(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Release, buffer, npages));

        // The C test checks the first half only.
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size / 2), i => (int)i);

        HmmBufferFree(p, buffer);
    }

    public void migrate_shared(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, SharedAnon);

        Assert.Equal(Errno.ENOENT, HmmMigrateSysToDev(self.Fd, buffer, npages));

        HmmBufferFree(p, buffer);
    }

    public void migrate_multiple(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;

        for (int c = 0; c < NTimes; c++)
        {
            var buffer = NewBuffer(size, size);
            buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

            CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

            Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
            Assert.Equal(npages, buffer.CPages);
            AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

            // Coherent memory is CPU-accessible and never faults back: migrate it explicitly.
            if (HmmIsCoherentType(self.DeviceNumber))
            {
                Assert.Equal(Errno.None, HmmMigrateDevToSys(self.Fd, buffer, npages));
                Assert.Equal(npages, buffer.CPages);
            }

            CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

            HmmBufferFree(p, buffer);
        }
    }

    public void anon_read_multiple(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;

        for (int c = 0; c < NTimes; c++)
        {
            var buffer = NewBuffer(size, size);
            buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

            CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)(i + c));

            Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages));
            Assert.Equal(npages, buffer.CPages);
            Assert.Equal(1UL, buffer.Faults);

            AssertInts(buffer.Mirror, 0, Ints(size), i => (int)(i + c), "mirror");

            HmmBufferFree(p, buffer);
        }
    }

    /// <summary>unmap_buffer: after a short random delay, munmap the second half of the buffer while
    /// the device reads it, then clear buffer->ptr.</summary>
    private static void UnmapBuffer(Process p, HmmBuffer buffer, long delayNs)
    {
        long until = Stopwatch.GetTimestamp() + delayNs * Stopwatch.Frequency / 1_000_000_000;
        while (Stopwatch.GetTimestamp() < until)
            Thread.SpinWait(16);
        ulong ptr = Volatile.Read(ref buffer.Ptr);
        p.Munmap(ptr + buffer.Size / 2, buffer.Size / 2);
        Volatile.Write(ref buffer.Ptr, 0UL);
    }

    public void anon_teardown(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        // hmm_random() reads /dev/urandom; a fixed seed keeps the interleavings reproducible.
        var random = new Random(0x4d4d48);

        for (int c = 0; c < NTimes; ++c)
        {
            var buffer = NewBuffer(size, size);
            buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

            CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)(i + c));

            long delayNs = random.Next(32000);
            Exception? threadFault = null;
            var thread = new Thread(() =>
            {
                try
                {
                    UnmapBuffer(p, buffer, delayNs);
                }
                catch (Exception e)
                {
                    threadFault = e;
                }
            });
            thread.Start();

            var rc = HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages);
            if (rc == Errno.None)
            {
                Assert.Equal(npages, buffer.CPages);
                Assert.Equal(1UL, buffer.Faults);
                AssertInts(buffer.Mirror, 0, Ints(size), i => (int)(i + c), "mirror");
            }

            thread.Join();
            if (threadFault is not null)
                throw new InvalidOperationException("unmap_buffer failed", threadFault);
            // buffer->ptr is NULL now: as in C, the first half stays mapped until exit.
            HmmBufferFree(p, buffer);
        }
    }

    public void mixedmap(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = 1;
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, npages);

        // A MAP_PRIVATE mapping of the dmirror device file itself (VM_MIXEDMAP).
        Assert.Equal(Errno.None, MmapDmirror(p, size, ProtRw, MapFlags.Private, self.Fd, out buffer.Ptr));

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        Assert.Equal((byte)DmirrorProt.Read, buffer.Mirror[0]);

        HmmBufferFree(p, buffer);
    }

    /// <summary>One huge page seen at PMD or at PUD level, as the default huge page size makes it: the
    /// level is taken from the first page and every page must match it exactly.</summary>
    private static void AssertOneMappingLevel(byte[] m, ulong npages, DmirrorProt access)
    {
        var prot = (byte)(access | ((m[0] & (byte)DmirrorProt.Pud) != 0 ? DmirrorProt.Pud : DmirrorProt.Pmd));
        for (ulong i = 0; i < npages; ++i)
            Assert.Equal(prot, m[i]);
    }

    public void compound(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong defaultHsize = DefaultHugePageSize();

        // The C test SKIPs without a free huge page and returns silently when the mapping fails; the
        // model boots with a hugetlb pool, so neither may happen here.
        Assert.NotEqual(0L, self.HugetlbFreeDefaultPages());

        ulong size = Align(TwoMeg, defaultHsize);
        ulong npages = size >> PageShift;

        var buffer = NewBuffer(size, npages);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon | MapFlags.Hugetlb);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertOneMappingLevel(buffer.Mirror, npages, DmirrorProt.Write);

        Assert.Equal(Errno.None, p.Mprotect(buffer.Ptr, size, Prot.Read));

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertOneMappingLevel(buffer.Mirror, npages, DmirrorProt.Read);

        p.Munmap(buffer.Ptr, buffer.Size);
        buffer.Ptr = 0;
        HmmBufferFree(p, buffer);
    }

    public void exclusive(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Exclusive, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        // CPU access takes the pages back from the device.
        CpuCheckAndIncrementInts(p, buffer.Ptr, size / sizeof(int));
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)(i + 1));

        // The device's atomic access has been revoked.
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.CheckExclusive, buffer, npages));

        HmmBufferFree(p, buffer);
    }

    public void exclusive_mprotect(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Exclusive, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        Assert.Equal(Errno.None, p.Mprotect(buffer.Ptr, size, Prot.Read));

        Assert.Equal(Errno.EPERM, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Write, buffer, npages));

        HmmBufferFree(p, buffer);
    }

    public void exclusive_cow(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = BufferPages();
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Exclusive, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        var child = p.Fork();
        var status = RunChild(child, () =>
        {
            // The child verifies COW on its own, then _exit(0)s without the test's teardown.
            CpuCheckAndIncrementInts(child, buffer.Ptr, size / sizeof(int));
            CpuAssertInts(child, buffer.Ptr, 0, Ints(size), i => (int)(i + 1));
        });

        // The parent increments too: COW works for both processes.
        CpuCheckAndIncrementInts(p, buffer.Ptr, size / sizeof(int));
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)(i + 1));

        // waitpid(): the child exited, with status 0.
        status.AssertExited();
        Assert.Equal(0, status.ExitStatus);

        HmmBufferFree(p, buffer);
    }

    /// <summary>One gup_test ioctl on one page (nr_pages_per_call = 1, size = page_size, gup_flags =
    /// FOLL_WRITE | flags), with the references or pins dropped again as mm/gup_test.c does.</summary>
    private static void GupTestExec(Process p, ulong addr, GupTestRequest cmd, bool longterm = false)
    {
        Assert.Equal(Errno.None, p.GupTest(cmd, addr, PageSize, longterm, out ulong size));
        Assert.Equal(PageSize, size);
    }

    public void hmm_gup_test(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = 4;
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        // GUP_BASIC_TEST: get_user_pages.
        GupTestExec(p, buffer.Ptr, GupTestRequest.GupBasicTest);
        // GUP_FAST_BENCHMARK: get_user_pages_fast (falls back to the slow path for a non-present pte).
        GupTestExec(p, buffer.Ptr + 1 * PageSize, GupTestRequest.GupFastBenchmark);
        // PIN_FAST_BENCHMARK with FOLL_LONGTERM: pin_user_pages_fast.
        GupTestExec(p, buffer.Ptr + 2 * PageSize, GupTestRequest.PinFastBenchmark, longterm: true);
        // PIN_LONGTERM_BENCHMARK: pin_user_pages with FOLL_LONGTERM added by gup_test.
        GupTestExec(p, buffer.Ptr + 3 * PageSize, GupTestRequest.PinLongtermBenchmark);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        var m = buffer.Mirror;
        if (HmmIsCoherentType(self.DeviceNumber))
        {
            Assert.Equal((byte)(DmirrorProt.DevCoherentLocal | DmirrorProt.Write), m[0]);
            Assert.Equal((byte)(DmirrorProt.DevCoherentLocal | DmirrorProt.Write), m[1]);
        }
        else
        {
            Assert.Equal((byte)DmirrorProt.Write, m[0]);
            Assert.Equal((byte)DmirrorProt.Write, m[1]);
        }
        Assert.Equal((byte)DmirrorProt.Write, m[2]);
        Assert.Equal((byte)DmirrorProt.Write, m[3]);

        // No data was corrupted.
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        HmmBufferFree(p, buffer);
    }

    public void hmm_cow_in_device(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong npages = 4;
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);
        buffer.Ptr = MmapOk(p, size, ProtRw, PrivateAnon);

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        // The child only spins until the parent's SIGKILL: it does nothing before its exit.
        var child = p.Fork();

        // The parent writes the COW pages: private pages fault back to RAM first, then are copied.
        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        // kill(pid, SIGKILL) and waitpid(): the child dies of the signal.
        child.Dispose();

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        for (ulong i = 0; i < npages; i++)
            Assert.Equal((byte)DmirrorProt.Write, buffer.Mirror[i]);

        HmmBufferFree(p, buffer);
    }

    public void migrate_anon_huge_empty(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        var buffer = NewBuffer(2 * size, size);
        Array.Fill(buffer.Mirror, (byte)0xFF);
        buffer.Ptr = MmapOk(p, 2 * size, Prot.Read, PrivateAnon);

        ulong npages = size >> PageShift;
        ulong map = Align(buffer.Ptr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        ulong oldPtr = buffer.Ptr;
        buffer.Ptr = map;

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        AssertInts(buffer.Mirror, 0, Ints(size), _ => 0, "mirror");

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    public void migrate_anon_huge_zero(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        var buffer = NewBuffer(2 * size, size);
        Array.Fill(buffer.Mirror, (byte)0xFF);
        buffer.Ptr = MmapOk(p, 2 * size, Prot.Read, PrivateAnon);

        ulong npages = size >> PageShift;
        ulong map = Align(buffer.Ptr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        ulong oldPtr = buffer.Ptr;
        buffer.Ptr = map;

        // A read maps the huge zero page.
        int val = p.ReadInt32(buffer.Ptr);
        Assert.Equal(0, val);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        AssertInts(buffer.Mirror, 0, Ints(size), _ => 0, "mirror");

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), _ => 0);

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    public void migrate_anon_huge_free(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        var buffer = NewBuffer(2 * size, size);
        Array.Fill(buffer.Mirror, (byte)0xFF);
        buffer.Ptr = MmapOk(p, 2 * size, ProtRw, PrivateAnon);

        ulong npages = size >> PageShift;
        ulong map = Align(buffer.Ptr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        ulong oldPtr = buffer.Ptr;
        buffer.Ptr = map;

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.Free));

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    public void migrate_anon_huge_fault(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        var buffer = NewBuffer(2 * size, size);
        Array.Fill(buffer.Mirror, (byte)0xFF);
        buffer.Ptr = MmapOk(p, 2 * size, ProtRw, PrivateAnon);

        ulong npages = size >> PageShift;
        ulong map = Align(buffer.Ptr, size);
        ulong oldPtr = buffer.Ptr;
        buffer.Ptr = map;

        // Small pages first (no MADV_HUGEPAGE), then collapsed into a THP.
        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.Collapse));

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        if (!HmmIsCoherentType(self.DeviceNumber))
        {
            // The THP moved as one: a writable device-private PMD, a swap entry to /proc/self/pagemap.
            Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
            Assert.Equal(npages, buffer.CPages);

            var m = buffer.Mirror;
            for (ulong i = 0; i < npages; ++i)
                Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write | DmirrorProt.Pmd), m[i]);

            for (ulong i = 0; i < npages; ++i)
            {
                ulong entry = PagemapGetEntry(p, buffer.Ptr + i * PageSize);
                Assert.NotEqual(0UL, entry & PmSwap);
                Assert.False(PagemapPresent(entry));
            }
        }

        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    public void migrate_partial_unmap_fault(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        if (size == 0)
            size = TwoMeg;
        ulong unmapSize = size / 2;
        ulong[] offsets = [0, size / 4, size / 2];

        for (int useThp = 0; useThp < 2; ++useThp)
        {
            for (int j = 0; j < offsets.Length; ++j)
            {
                var buffer = NewBuffer(2 * size, size);
                Array.Fill(buffer.Mirror, (byte)0xFF);
                buffer.Ptr = MmapOk(p, 2 * size, ProtRw, PrivateAnon);

                ulong npages = size >> PageShift;
                ulong map = Align(buffer.Ptr, size);
                Assert.Equal(Errno.None, p.Madvise(map, size, useThp != 0 ? Advice.HugePage : Advice.NoHugePage));
                ulong oldPtr = buffer.Ptr;
                buffer.Ptr = map;

                CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

                Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
                Assert.Equal(npages, buffer.CPages);
                AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

                p.Munmap(buffer.Ptr + offsets[j], unmapSize);

                // Fault back what is still mapped: [0, offset) and [offset + unmap_size, size).
                CpuAssertInts(p, buffer.Ptr, 0, Ints(offsets[j]), i => (int)i);
                CpuAssertInts(p, buffer.Ptr, Ints(offsets[j] + unmapSize), Ints(size), i => (int)i);

                buffer.Ptr = oldPtr;
                HmmBufferFree(p, buffer);
            }
        }
    }

    public void migrate_remap_fault(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        ulong newPtr = 0;
        if (size == 0)
            size = TwoMeg;
        ulong[] offsets = [0, size / 4, size / 2];

        for (int before = 0; before < 2; ++before)
        {
            for (int dontUnmap = 0; dontUnmap < 2; ++dontUnmap)
            {
                for (int useThp = 0; useThp < 2; ++useThp)
                {
                    for (int j = 0; j < offsets.Length; ++j)
                    {
                        var flags = MremapFlags.MayMove | MremapFlags.Fixed;
                        if (dontUnmap != 0)
                            flags |= MremapFlags.DontUnmap;

                        var buffer = NewBuffer(8 * size, size);
                        Array.Fill(buffer.Mirror, (byte)0xFF);
                        buffer.Ptr = MmapOk(p, buffer.Size, ProtRw, PrivateAnon);

                        ulong npages = size >> PageShift;
                        ulong map = Align(buffer.Ptr, size);
                        Assert.Equal(Errno.None, p.Madvise(map, size, useThp != 0 ? Advice.HugePage : Advice.NoHugePage));
                        ulong oldPtr = buffer.Ptr;
                        p.Munmap(map + size, size * 2);
                        buffer.Ptr = map;

                        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

                        if (before != 0)
                        {
                            Assert.Equal(Errno.None, p.Mremap(map, size, size, flags, map + size + offsets[j], out newPtr));
                            buffer.Ptr = newPtr;
                        }

                        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
                        Assert.Equal(npages, buffer.CPages);
                        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

                        if (before == 0)
                        {
                            Assert.Equal(Errno.None, p.Mremap(map, size, size, flags, map + size + offsets[j], out newPtr));
                            buffer.Ptr = newPtr;
                        }

                        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), i => (int)i);

                        p.Munmap(newPtr, size);
                        buffer.Ptr = oldPtr;
                        HmmBufferFree(p, buffer);
                    }
                }
            }
        }
    }

    public void migrate_anon_huge_err(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        var buffer = NewBuffer(2 * size, 2 * size);
        Array.Fill(buffer.Mirror, (byte)0xFF);

        ulong oldPtr = MmapOk(p, 2 * size, ProtRw, PrivateAnon);
        ulong npages = size >> PageShift;
        ulong map = Align(oldPtr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        buffer.Ptr = map;

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        // Migrate to the device with the THP allocation failing: small device pages instead.
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Flags, buffer, (ulong)DmirrorFlags.FailAlloc));
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), i => (int)i, "mirror");

        // Fault back a single page.
        Assert.Equal(2048, p.ReadInt32(buffer.Ptr + 2048 * sizeof(int)));

        // Start over with a fresh mapping.
        Assert.Equal(Errno.None, p.Munmap(oldPtr, 2 * size));
        oldPtr = MmapOk(p, 2 * size, ProtRw, PrivateAnon);
        map = Align(oldPtr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        buffer.Ptr = map;

        CpuWriteInts(p, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        // Migrate the device THP back with the system THP allocation failing.
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Flags, buffer, (ulong)DmirrorFlags.FailAlloc));

        if (HmmIsCoherentType(self.DeviceNumber))
        {
            // The C test asserts 0 here, but on a real kernel the coherent variant cannot get it: a coherent
            // unit has one fixed chunk of small pages (dmirror_device_init builds it with is_large false and a
            // second chunk would overlap it), so the "THP" above went to order-0 device pages, and FAIL_ALLOC on
            // an order-0 page makes dmirror_devmem_fault_alloc_and_copy return VM_FAULT_OOM: -ENOMEM. The model
            // does what the kernel does (docs/fidelity.md); the flag is spent, so a second try succeeds.
            Assert.Equal(Errno.ENOMEM, HmmMigrateDevToSys(self.Fd, buffer, npages));
        }
        Assert.Equal(Errno.None, HmmMigrateDevToSys(self.Fd, buffer, npages));
        Assert.Equal(2048, p.ReadInt32(buffer.Ptr + 2048 * sizeof(int)));

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    public void migrate_anon_huge_zero_err(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong size = ReadPmdPagesize();
        var buffer = NewBuffer(2 * size, 2 * size);
        Array.Fill(buffer.Mirror, (byte)0xFF);

        ulong oldPtr = MmapOk(p, 2 * size, Prot.Read, PrivateAnon);
        ulong npages = size >> PageShift;
        ulong map = Align(oldPtr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        buffer.Ptr = map;

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Flags, buffer, (ulong)DmirrorFlags.FailAlloc));
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        AssertInts(buffer.Mirror, 0, Ints(size), _ => 0, "mirror");

        // Fault back a single page.
        Assert.Equal(0, p.ReadInt32(buffer.Ptr + 2048 * sizeof(int)));

        // Start over with a fresh mapping.
        Assert.Equal(Errno.None, p.Munmap(oldPtr, 2 * size));
        oldPtr = MmapOk(p, 2 * size, Prot.Read, PrivateAnon);
        map = Align(oldPtr, size);
        Assert.Equal(Errno.None, p.Madvise(map, size, Advice.HugePage));
        buffer.Ptr = map;

        // A read maps the huge zero page. (The C test reads through its stale ptr, the previous
        // mapping's address; the new mapping is what it means to touch.)
        Assert.Equal(0, p.ReadInt32(buffer.Ptr));

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Flags, buffer, (ulong)DmirrorFlags.FailAlloc));
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        // Fault the device memory back.
        CpuAssertInts(p, buffer.Ptr, 0, Ints(size), _ => 0);

        buffer.Ptr = oldPtr;
        HmmBufferFree(p, buffer);
    }

    /// <summary>struct benchmark_results: mean milliseconds a migration and the GB/s they make.</summary>
    private readonly record struct BenchmarkResults(double SysToDevTime, double DevToSysTime, double ThroughputS2d, double ThroughputD2s);

    /// <summary>hmm_buffer_alloc: a buffer of <paramref name="size"/> bytes whose mirror is all 0xFF.</summary>
    private static HmmBuffer HmmBufferAlloc(ulong size)
    {
        var buffer = NewBuffer(size, size);
        Array.Fill(buffer.Mirror, (byte)0xFF);
        return buffer;
    }

    /// <summary>run_migration_benchmark: one buffer, migrated to the device and back once to warm up,
    /// then <paramref name="iterations"/> timed times. 0, or -1 / -errno as the C function returns.</summary>
    private static int RunMigrationBenchmark(Process p, Dmirror fd, bool useThp, ulong bufferSize, int iterations, out BenchmarkResults results)
    {
        results = default;
        ulong npages = bufferSize / PageSize;
        var buffer = HmmBufferAlloc(bufferSize);

        if (p.Mmap(0, bufferSize, ProtRw, PrivateAnon, out buffer.Ptr) != Errno.None)
            return -1;

        if (p.Madvise(buffer.Ptr, bufferSize, useThp ? Advice.HugePage : Advice.NoHugePage) != Errno.None)
            return -1;

        // Touch every page so that it is allocated.
        CpuWriteInts(p, buffer.Ptr, bufferSize / sizeof(int), i => (int)(i & 0xFF));

        // Warm-up round.
        var ret = HmmMigrateSysToDev(fd, buffer, npages);
        if (ret != Errno.None)
            return -(int)ret;
        ret = HmmMigrateDevToSys(fd, buffer, npages);
        if (ret != Errno.None)
            return -(int)ret;

        double s2dTotal = 0, d2sTotal = 0;
        for (int i = 0; i < iterations; i++)
        {
            long start = Stopwatch.GetTimestamp();
            ret = HmmMigrateSysToDev(fd, buffer, npages);
            if (ret != Errno.None)
                return -(int)ret;
            s2dTotal += Stopwatch.GetElapsedTime(start).TotalMilliseconds;

            start = Stopwatch.GetTimestamp();
            ret = HmmMigrateDevToSys(fd, buffer, npages);
            if (ret != Errno.None)
                return -(int)ret;
            d2sTotal += Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        double gib = bufferSize / (1024.0 * 1024.0 * 1024.0);
        double s2d = s2dTotal / iterations, d2s = d2sTotal / iterations;
        results = new BenchmarkResults(s2d, d2s, gib / (s2d / 1000.0), gib / (d2s / 1000.0));

        HmmBufferFree(p, buffer);
        return 0;
    }

    /// <summary>The suite runs benchmark_thp_migration small: sizes up to two THPs and two timed rounds
    /// (the C test: up to 128 THPs, five rounds). `hmmsim bench migrate` runs the whole table.</summary>
    private const ulong BenchmarkMaxSize = 2 * TwoMeg;
    private const int BenchmarkIterations = 2;

    public void benchmark_thp_migration(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm(variant, design);
        var p = self.Self;
        ulong thpSize = ReadPmdPagesize();
        int iterations = BenchmarkIterations;

        if (thpSize == 0)
            thpSize = TwoMeg;

        ulong[] testSizes = [thpSize / 4, thpSize / 2, thpSize, thpSize * 2, thpSize * 4, thpSize * 8, thpSize * 128];

        foreach (ulong size in testSizes)
        {
            // The C test stops at sizes past INT_MAX; the suite stops at its own bound.
            if (size > int.MaxValue || size > BenchmarkMaxSize)
                break;

            // The results are what print_benchmark_results shows; a case has no output, so they go unprinted.
            Assert.Equal(0, RunMigrationBenchmark(p, self.Fd, useThp: true, size, iterations, out _));
            Assert.Equal(0, RunMigrationBenchmark(p, self.Fd, useThp: false, size, iterations, out _));
        }
    }
}
