using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Tests.Storage;

[TestClass]
public sealed class AtomicFileTests
{
    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // a no-op on Windows
    public void SyncDirectory_OfAMissingFolder_OrAFileWhereOneWas_ThrowsNamingIt()
    {
        using var dir = new TempDir("afile");
        string file = Path.Combine(dir.Path, "file");
        File.WriteAllText(file, "x");
        foreach (string missing in new[] { Path.Combine(dir.Path, "gone"), Path.Combine(file, "below") })
        {
            var e = Assert.ThrowsExactly<DirectoryNotFoundException>(() => AtomicFile.SyncDirectory(missing));
            StringAssert.Contains(e.Message, missing);
        }
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void SyncDirectory_WhereTheFileSystemCannotFlushAFolder_IsNotAnError()
    {
        // procfs and sysfs folders have no fsync: the kernel answers EINVAL, as some network file systems do.
        AtomicFile.SyncDirectory("/proc");
        AtomicFile.SyncDirectory("/sys");
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Write_WhenTheFolderFlushFails_ThrowsNamingTheFolder_AndTheNextWriteSucceeds()
    {
        using var dir = new TempDir("afile");
        string path = Path.Combine(dir.Path, "state.json");
        AtomicFile.InjectedFsyncErrno = 5; // EIO
        try
        {
            var e = Assert.ThrowsExactly<IOException>(() => AtomicFile.Write(path, "one"u8));
            Assert.AreEqual(5, e.HResult);
            StringAssert.Contains(e.Message, dir.Path);
            StringAssert.Contains(e.Message, "power cut");
        }
        finally
        {
            AtomicFile.InjectedFsyncErrno = 0;
        }
        AtomicFile.Write(path, "two"u8);
        Assert.AreEqual("two", File.ReadAllText(path));
    }
}
