package rpm

// Header tags used by the converter (rpm's include/rpm/rpmtag.h).
const (
	TagName              = 1000
	TagVersion           = 1001
	TagRelease           = 1002
	TagEpoch             = 1003
	TagSummary           = 1004
	TagDescription       = 1005
	TagBuildTime         = 1006
	TagVendor            = 1011
	TagLicense           = 1014
	TagPackager          = 1015
	TagGroup             = 1016
	TagURL               = 1020
	TagArch              = 1022
	TagPreIn             = 1023
	TagPostIn            = 1024
	TagPreUn             = 1025
	TagPostUn            = 1026
	TagOldFilenames      = 1027
	TagFileSizes         = 1028
	TagFileModes         = 1030
	TagFileRdevs         = 1033
	TagFileMtimes        = 1034
	TagFileDigests       = 1035
	TagFileLinkTos       = 1036
	TagFileFlags         = 1037
	TagFileUserName      = 1039
	TagFileGroupName     = 1040
	TagProvideName       = 1047
	TagRequireFlags      = 1048
	TagRequireName       = 1049
	TagRequireVersion    = 1050
	TagConflictFlags     = 1053
	TagConflictName      = 1054
	TagConflictVersion   = 1055
	TagTriggerScripts    = 1065
	TagTriggerName       = 1066
	TagVerifyScript      = 1079
	TagChangelogTime     = 1080
	TagChangelogName     = 1081
	TagChangelogText     = 1082
	TagPreInProg         = 1085
	TagPostInProg        = 1086
	TagPreUnProg         = 1087
	TagPostUnProg        = 1088
	TagObsoleteName      = 1090
	TagFileDevices       = 1095
	TagFileInodes        = 1096
	TagProvideFlags      = 1112
	TagProvideVersion    = 1113
	TagObsoleteFlags     = 1114
	TagObsoleteVersion   = 1115
	TagDirIndexes        = 1116
	TagBaseNames         = 1117
	TagDirNames          = 1118
	TagPayloadFormat     = 1124
	TagPayloadCompressor = 1125
	TagPreTrans          = 1151
	TagPostTrans         = 1152
	TagLongFileSizes     = 5008
	TagFileCaps          = 5010
	TagFileDigestAlgo    = 5011
	TagRecommendName     = 5046
	TagRecommendVersion  = 5047
	TagRecommendFlags    = 5048
	TagSuggestName       = 5049
	TagSuggestVersion    = 5050
	TagSuggestFlags      = 5051
	TagSupplementName    = 5052
	TagEnhanceName       = 5055
	TagFileTriggerScript = 5066
	TagTransFileTrigger  = 5076
	TagPayloadDigest     = 5092
	TagPayloadDigestAlgo = 5093
	TagPreUnTrans        = 5104 // rpm ≥ 4.20
	TagPostUnTrans       = 5105
)

// RPM file flags (RPMFILE_*).
const (
	FileConfig    = 1 << 0
	FileDoc       = 1 << 1
	FileMissingOK = 1 << 3
	FileNoReplace = 1 << 4
	FileGhost     = 1 << 6
	FileLicense   = 1 << 7
	FileArtifact  = 1 << 12
)

// RPM dependency flags (RPMSENSE_*).
const (
	SenseLess      = 1 << 1
	SenseGreater   = 1 << 2
	SenseEqual     = 1 << 3
	SensePostTrans = 1 << 5
	SensePreReq    = 1 << 6
	SensePreTrans  = 1 << 7
	SenseInterp    = 1 << 8
	SenseScriptPre = 1 << 9
	SenseRPMLib    = 1 << 24
	SenseConfig    = 1 << 28
)
