; Inno Setup 6 script: KOI for Windows, installed per user (no administrator rights).
;
; Built over PyInstaller's output (dist\koi: koi-inspector.exe, koi.exe, _internal\):
;   iscc /DAppVersion=0.1.0 packaging\windows\koi.iss
; from the repository root, after packaging/koi.spec has run. AppVersion is
; core/__init__.py's __version__ (the workflow passes it); SourceDir and IconFile may be
; overridden the same way (/DSourceDir=..., /DIconFile=...). Paths are relative to this file.
; Gives dist\koi-<version>-windows-x64-setup.exe.

#ifndef AppVersion
  #error Pass the version: iscc /DAppVersion=X.Y.Z (core/__init__.py's __version__)
#endif
#ifndef SourceDir
  #define SourceDir "..\..\dist\koi"
#endif
#ifndef IconFile
  #define IconFile "..\..\build\icons\koi.ico"
#endif
#define AppName "KOI"
#define ProgId "KOI.Session"

[Setup]
; Never change AppId: Windows finds an installed KOI (to upgrade or uninstall it) by it.
AppId=io.github.koi_inspector.KOI
AppName={#AppName}
AppVersion={#AppVersion}
AppVerName={#AppName} {#AppVersion}
AppPublisher=KOI developers
AppComments=Kernel Object Inspector: Windows NT kernel structures and a simulated NT scheduler
VersionInfoVersion={#AppVersion}
VersionInfoProductName={#AppName}
VersionInfoDescription={#AppName} {#AppVersion} Setup
; Per user: installs under %LOCALAPPDATA%\Programs, registers under HKCU, asks for no elevation.
PrivilegesRequired=lowest
DefaultDirName={autopf}\{#AppName}
DisableProgramGroupPage=yes
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=koi-{#AppVersion}-windows-x64-setup
SetupIconFile={#IconFile}
UninstallDisplayIcon={app}\koi-inspector.exe
UninstallDisplayName={#AppName} {#AppVersion}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
; Explorer refreshes .koi's icon and handler at the end of (un)installation.
ChangesAssociations=yes
; The optional PATH entry is announced to running programs.
ChangesEnvironment=yes
; Upgrading over a running KOI would leave old DLLs in place.
CloseApplications=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add the koi command line to my PATH"; GroupDescription: "Command line:"; Flags: unchecked

[InstallDelete]
; An upgrade replaces the libraries wholesale: stale ones from an older KOI must not linger.
Type: filesandordirs; Name: "{app}\_internal"

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\{#AppName}"; Filename: "{app}\koi-inspector.exe"; Comment: "Kernel Object Inspector"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\koi-inspector.exe"; Comment: "Kernel Object Inspector"; Tasks: desktopicon

[Registry]
; .koi sessions open in KOI. HKA is HKCU for a per-user install (Software\Classes there is
; the user's part of HKEY_CLASSES_ROOT).
Root: HKA; Subkey: "Software\Classes\.koi"; ValueType: string; ValueName: ""; ValueData: "{#ProgId}"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.koi"; ValueType: string; ValueName: "Content Type"; ValueData: "application/x-koi-session"; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\.koi\OpenWithProgids"; ValueType: string; ValueName: "{#ProgId}"; ValueData: ""; Flags: uninsdeletevalue
Root: HKA; Subkey: "Software\Classes\{#ProgId}"; ValueType: string; ValueName: ""; ValueData: "KOI session"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\{#ProgId}\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\koi-inspector.exe,0"
Root: HKA; Subkey: "Software\Classes\{#ProgId}\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\koi-inspector.exe"" ""%1"""
Root: HKA; Subkey: "Software\Classes\Applications\koi-inspector.exe"; ValueType: string; ValueName: "FriendlyAppName"; ValueData: "{#AppName}"; Flags: uninsdeletekey
Root: HKA; Subkey: "Software\Classes\Applications\koi-inspector.exe\SupportedTypes"; ValueType: string; ValueName: ".koi"; ValueData: ""
; koi on the PATH (the user's own PATH, HKCU\Environment), only when asked for.
Root: HKCU; Subkey: "Environment"; ValueType: expandsz; ValueName: "Path"; ValueData: "{olddata};{app}"; Tasks: addtopath; Check: NotOnPath(ExpandConstant('{app}'))

[Run]
Filename: "{app}\koi-inspector.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
// The user's PATH as stored, or '' when there is none.
function UserPath(): string;
begin
  if not RegQueryStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Result) then
    Result := '';
end;

// True when Dir is not yet one of the entries of the user's PATH.
function NotOnPath(Dir: string): Boolean;
begin
  Result := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(UserPath()) + ';') = 0;
end;

// On uninstall, take KOI's directory out of the user's PATH again (if it was put there).
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
var
  Path, Dir: string;
  At: Integer;
begin
  if CurUninstallStep <> usPostUninstall then
    exit;
  Path := UserPath();
  Dir := ExpandConstant('{app}');
  At := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Path) + ';');
  if At = 0 then
    exit;
  // At indexes ';' + Path; the entry starts at At in Path, followed by its ';' if any.
  Delete(Path, At, Length(Dir) + 1);
  if (Length(Path) > 0) and (Path[Length(Path)] = ';') then
    Delete(Path, Length(Path), 1);
  RegWriteExpandStringValue(HKEY_CURRENT_USER, 'Environment', 'Path', Path);
end;
