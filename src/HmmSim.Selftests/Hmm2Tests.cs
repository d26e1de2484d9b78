using static HmmSim.Selftests.HmmFixture;

#pragma warning disable CA1707, IDE1006 // test names are the kernel's TEST_F names

namespace HmmSim.Selftests;

/// <summary>tools/testing/selftests/mm/hmm-tests.c, FIXTURE(hmm2): the tests with two open dmirror
/// files (units 0 and 1, device private; units 2 and 3, device coherent), for both device-private
/// designs. <see cref="HmmFixture.Fd"/> is self->fd0 and <see cref="HmmFixture.Fd1"/> self->fd1.</summary>
public sealed class Hmm2Tests
{
    private const MapFlags PrivateAnon = MapFlags.Private | MapFlags.Anonymous;

    public void migrate_mixed(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm2(variant, design);
        var proc = self.Self;
        ulong npages = 6;
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);

        // Reserve a range of addresses.
        buffer.Ptr = MmapOk(proc, size, Prot.None, PrivateAnon);
        ulong p = buffer.Ptr;

        // A PROT_NONE range cannot migrate.
        Assert.Equal(Errno.EINVAL, HmmMigrateSysToDev(self.Fd1, buffer, npages));

        // Punch a hole at page 1: the range is no longer covered by a VMA.
        Assert.Equal(Errno.None, proc.Munmap(buffer.Ptr + PageSize, PageSize));
        Assert.Equal(Errno.EINVAL, HmmMigrateSysToDev(self.Fd1, buffer, 3));

        // Page 2: the read-only zero page.
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 2 * PageSize, PageSize, Prot.Read));
        int val = proc.ReadInt32(buffer.Ptr + 2 * PageSize) + 3;
        Assert.Equal(3, val);

        // Page 3: written, then read-only.
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 3 * PageSize, PageSize, Prot.Read | Prot.Write));
        proc.WriteInt32(buffer.Ptr + 3 * PageSize, val);
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 3 * PageSize, PageSize, Prot.Read));

        // Pages 4 and 5: read-write.
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 4 * PageSize, 2 * PageSize, Prot.Read | Prot.Write));
        proc.WriteInt32(buffer.Ptr + 4 * PageSize, val);
        proc.WriteInt32(buffer.Ptr + 5 * PageSize, val);

        // Pages 2-5 migrate to device 1.
        buffer.Ptr = p + 2 * PageSize;
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd1, buffer, 4));
        Assert.Equal(4UL, buffer.CPages);

        // Page 5 is on device 1, so it does not migrate to device 0.
        buffer.Ptr = p + 5 * PageSize;
        Assert.Equal(Errno.ENOENT, HmmMigrateSysToDev(self.Fd, buffer, 1));

        buffer.Ptr = p;
        HmmBufferFree(proc, buffer);
    }

    public void snapshot(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm2(variant, design);
        var proc = self.Self;
        ulong npages = 7;
        ulong size = npages << PageShift;
        // The C test mallocs npages bytes, yet its two one-page migrations copy a whole page into
        // that mirror (past the allocation, into the heap). A page-sized mirror gives them room.
        var buffer = NewBuffer(size, PageSize);

        // Reserve a range of addresses.
        buffer.Ptr = MmapOk(proc, size, Prot.None, PrivateAnon);
        ulong p = buffer.Ptr;

        // Page 1: a hole.
        Assert.Equal(Errno.None, proc.Munmap(buffer.Ptr + PageSize, PageSize));

        // Page 2: the read-only zero page.
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 2 * PageSize, PageSize, Prot.Read));
        int val = proc.ReadInt32(buffer.Ptr + 2 * PageSize) + 3;
        Assert.Equal(3, val);

        // Page 3: written, then read-only.
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 3 * PageSize, PageSize, Prot.Read | Prot.Write));
        proc.WriteInt32(buffer.Ptr + 3 * PageSize, val);
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 3 * PageSize, PageSize, Prot.Read));

        // Pages 4-6: read-write; page 4 written.
        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr + 4 * PageSize, 3 * PageSize, Prot.Read | Prot.Write));
        proc.WriteInt32(buffer.Ptr + 4 * PageSize, val);

        // Page 5 on device 0.
        buffer.Ptr = p + 5 * PageSize;
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd, buffer, 1));
        Assert.Equal(1UL, buffer.CPages);

        // Page 6 on device 1.
        buffer.Ptr = p + 6 * PageSize;
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd1, buffer, 1));
        Assert.Equal(1UL, buffer.CPages);

        // What device 0 sees.
        buffer.Ptr = p;
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Snapshot, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        var m = buffer.Mirror;
        Assert.Equal((byte)DmirrorProt.Error, m[0]);
        Assert.Equal((byte)DmirrorProt.Error, m[1]);
        Assert.Equal((byte)(DmirrorProt.Zero | DmirrorProt.Read), m[2]);
        Assert.Equal((byte)DmirrorProt.Read, m[3]);
        Assert.Equal((byte)DmirrorProt.Write, m[4]);
        if (!HmmIsCoherentType(self.DeviceNumber))
        {
            Assert.Equal((byte)(DmirrorProt.DevPrivateLocal | DmirrorProt.Write), m[5]);
            Assert.Equal((byte)DmirrorProt.None, m[6]);
        }
        else
        {
            Assert.Equal((byte)(DmirrorProt.DevCoherentLocal | DmirrorProt.Write), m[5]);
            Assert.Equal((byte)(DmirrorProt.DevCoherentRemote | DmirrorProt.Write), m[6]);
        }

        HmmBufferFree(proc, buffer);
    }

    public void double_map(string variant, DevicePrivateDesign design)
    {
        using var self = Hmm2(variant, design);
        var proc = self.Self;
        ulong npages = 6;
        ulong size = npages << PageShift;
        var buffer = NewBuffer(size, size);

        buffer.Ptr = MmapOk(proc, size, Prot.Read | Prot.Write, PrivateAnon);

        CpuWriteInts(proc, buffer.Ptr, size / sizeof(int), i => (int)i);

        Assert.Equal(Errno.None, proc.Mprotect(buffer.Ptr, size, Prot.Read));

        // Device 0 reads.
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);
        AssertInts(buffer.Mirror, 0, (long)(size / sizeof(int)), i => (int)i, "mirror");

        // Device 1 reads the same memory.
        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd1, HmmDmirrorRequest.Read, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);
        AssertInts(buffer.Mirror, 0, (long)(size / sizeof(int)), i => (int)i, "mirror");

        // Migrate to device 1, then device 0 reads again.
        Assert.Equal(Errno.None, HmmMigrateSysToDev(self.Fd1, buffer, npages));
        Assert.Equal(npages, buffer.CPages);

        Assert.Equal(Errno.None, HmmDmirrorCmd(self.Fd, HmmDmirrorRequest.Read, buffer, npages));
        Assert.Equal(npages, buffer.CPages);
        Assert.Equal(1UL, buffer.Faults);
        AssertInts(buffer.Mirror, 0, (long)(size / sizeof(int)), i => (int)i, "mirror");

        HmmBufferFree(proc, buffer);
    }
}
