using CloudMirrorFs.Mount.Windows;

namespace CloudMirrorFs.Mount.Tests.Windows;

/// <summary>The options handed to fsp_fuse3_new.</summary>
[TestClass]
public sealed class WinFspCommandLineTests
{
    [TestMethod]
    public void Arguments_DriveLetter_AddsTheNetworkPrefixNamedAfterTheVolume()
    {
        string[] argv = WinFspCommandLine.Arguments(new FuseMountOptions { VolumeName = "photos" }, driveLetter: true);

        Assert.AreEqual(3, argv.Length);
        Assert.AreEqual("-o", argv[1]);
        string[] o = argv[2].Split(',');
        CollectionAssert.IsSubsetOf(new[] { "uid=-1", "gid=-1", "FileSystemName=cmfs", "volname=photos", "VolumePrefix=/cmfs/photos", "FileInfoTimeout=1000", $"ThreadCount={new FuseMountOptions().MaxThreads}" }, o);
    }

    [TestMethod]
    public void Arguments_Folder_HasNoNetworkPrefix()
    {
        string[] argv = WinFspCommandLine.Arguments(new FuseMountOptions(), driveLetter: false);

        Assert.IsFalse(argv[2].Contains("VolumePrefix", StringComparison.Ordinal), argv[2]);
    }

    [TestMethod]
    public void Arguments_CommasAndBackslashesInTheName_AreEscapedForWinFspsParser()
    {
        string[] argv = WinFspCommandLine.Arguments(new FuseMountOptions { VolumeName = @"a,b\c" }, driveLetter: true);

        StringAssert.Contains(argv[2], @"volname=a\,b\\c");
        StringAssert.Contains(argv[2], @"VolumePrefix=/cmfs/a\,b_c", "a backslash cannot be part of the share name");
    }
}
