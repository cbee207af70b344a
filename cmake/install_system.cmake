# Runs at install time (cmake --install BUILD [--prefix P], DESTDIR honoured), so that one build
# tree installs for the package (--prefix /usr) or anywhere else. It installs what the FHS, not
# CMake's layout, places: the pipeline files' directory, the systemd units, sysusers.d and
# tmpfiles.d. Prefix /usr or /usr/local: /etc/kbridge; otherwise P/etc/kbridge. Units go to
# /lib/systemd/system for /usr (Debian 12's place), else P/lib/systemd/system.
# Set by the install(CODE) that includes this: KBRIDGE_SOURCE_DIR, KBRIDGE_BINARY_DIR.
set(prefix "${CMAKE_INSTALL_PREFIX}")
if(prefix STREQUAL "/usr" OR prefix STREQUAL "/usr/local")
  set(etc "/etc")
else()
  set(etc "${prefix}/etc")
endif()
if(prefix STREQUAL "/usr")
  set(unit_dir "/lib/systemd/system")
else()
  set(unit_dir "${prefix}/lib/systemd/system")
endif()

# The units name the installed binary; kbridge.service is the template's single-file twin.
set(staged "${KBRIDGE_BINARY_DIR}/install-staged")
file(MAKE_DIRECTORY "${staged}")
file(READ "${KBRIDGE_SOURCE_DIR}/scripts/kbridge@.service" template)
string(REPLACE "/usr/bin/kbridge" "${prefix}/bin/kbridge" template "${template}")
file(WRITE "${staged}/kbridge@.service" "${template}")
string(REGEX REPLACE "^(#[^\n]*\n)+" "# kbridge as a systemd service running /etc/kbridge/kbridge.yaml (with /etc/kbridge/kbridge.env);\n# kbridge@NAME.service runs /etc/kbridge/NAME.yaml. See kbridge@.service for the details.\n" plain "${template}")
string(REPLACE "%i" "kbridge" plain "${plain}")
string(REPLACE "[Unit]\n" "[Unit]\nConditionPathExists=/etc/kbridge/kbridge.yaml\n" plain "${plain}")
file(WRITE "${staged}/kbridge.service" "${plain}")

file(INSTALL "${staged}/kbridge@.service" "${staged}/kbridge.service" DESTINATION "${unit_dir}"
     FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${KBRIDGE_SOURCE_DIR}/packaging/kbridge.sysusers" DESTINATION "${prefix}/lib/sysusers.d"
     RENAME kbridge.conf FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
file(INSTALL "${KBRIDGE_SOURCE_DIR}/packaging/kbridge.tmpfiles" DESTINATION "${prefix}/lib/tmpfiles.d"
     RENAME kbridge.conf FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
# Pipeline files and their secrets: not world-readable (tmpfiles.d gives the directory and the
# package's postinst the files the group kbridge).
file(INSTALL "${KBRIDGE_SOURCE_DIR}/packaging/example.yaml" "${KBRIDGE_SOURCE_DIR}/packaging/example.env"
     DESTINATION "${etc}/kbridge" FILE_PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ
     DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE)
